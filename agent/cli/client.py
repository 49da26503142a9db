"""The one client of every command that talks to a running agent."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
from typing import Any

from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:9730"


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("VAKTPOST_URL", DEFAULT_URL))
    parser.add_argument("--user", help="operator name (password: VAKTPOST_PASSWORD or prompt)")


def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    # Here, not at the top: every command's parser is built at start, and
    # `vaktpost run` and `--help` need no HTTP client (http.client, email, tempfile).
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if getattr(args, "user", None):
        password = os.environ.get("VAKTPOST_PASSWORD") or getpass.getpass("password: ")
        token = base64.b64encode(f"{args.user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        # 400/404/409/422: the arguments were wrong; anything else: the agent could not do it.
        code = EXIT_USAGE if exc.code in (400, 404, 409, 422) else EXIT_CANNOT_RUN
        raise CliError(f"{method} {path}: HTTP {exc.code}: {message}", code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot reach {args.url}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    from core.errors import os_error_text

    reason = getattr(exc, "reason", None)
    if isinstance(reason, OSError):
        return os_error_text(reason)
    return str(reason or exc)
