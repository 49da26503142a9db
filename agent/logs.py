"""Logging: one JSON object per line when stderr is not a TTY, readable text on a TTY.

Every record passes `RedactingFilter` on the way out, ours and third-party ones
(aiohttp, urllib3 under apprise ...) alike, at every level.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from core.redact import MASK, redact_text

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# urllib3 (and so requests, under apprise) logs `"POST /bot<token>/sendMessage HTTP/1.1"`:
# a path, not a URL, and for many services the path is the credential.
_REQUEST_LINE = re.compile(r'"([A-Z]{3,10}) (\S+) (HTTP/[0-9.]+)"')


class RedactingFilter(logging.Filter):
    """Redacts URLs (userinfo, query values) in the message, extras and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact_text(record.getMessage())
        if not record.name.startswith("vaktpost"):
            message = _REQUEST_LINE.sub(rf'"\1 /{MASK} \3"', message)
        record.msg, record.args = message, None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact_text(value))
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # set by RedactingFilter
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            text += f"  {extras}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:  # set by RedactingFilter
            text += "\n" + record.exc_text
        return text


def setup(level: str = "info", json_logs: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = not sys.stderr.isatty() if json_logs is None else json_logs
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every job run at INFO: far too chatty at 10,000 checks.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
