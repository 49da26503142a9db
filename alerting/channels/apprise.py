"""apprise: e-mail, SMS services, Teams, Slack, ntfy, Matrix ... through apprise URLs.

Apprise reports only success or failure; the HTTP status, where its plugin
logged one (`error=NNN`), classifies the failure like every other channel.
Apprise URLs hold passwords and tokens: error texts name the service only.
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from alerting.channels.base import ChannelConfig
from alerting.channels.interface import (
    DeliveryError,
    PermanentError,
    RetryableError,
    classify_status,
)
from alerting.channels.recipient import fill

if TYPE_CHECKING:
    import apprise

_STATUS = re.compile(r"error=(\d{3})")
_HTML = "html"  # apprise.NotifyFormat.HTML, without importing apprise at config load


def as_html(text: str) -> str:
    """Escaped, a <br> at each line break, leading spaces kept (the fallback's indent)."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        lines.append("&nbsp;" * (len(line) - len(stripped)) + html.escape(stripped))
    return "<br>".join(lines)


# Apprise logs plugin details (addresses, sometimes URLs) on its own logger: keep them out
# of ours. Its per-call log capture still sees them, which is where the status comes from.
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())


class AppriseConfig(ChannelConfig):
    type: Literal["apprise"]
    urls: Annotated[tuple[str, ...], Field(min_length=1)]


class AppriseChannel:
    def __init__(self, name: str, config: AppriseConfig) -> None:
        self.name = name
        self.config = config

    def _build(self, payload: dict[str, Any]) -> apprise.Apprise:
        # Imported on first use: apprise and its plugins cost ~15 MB of RSS, paid
        # only by agents that configure an apprise channel.
        import apprise

        notifier = apprise.Apprise()
        for index, url in enumerate(self.config.urls):
            # Quoted: an address like anna+jour@kommun.se must stay one query value.
            if not notifier.add(fill(url, payload, self.name, lambda v: quote(v, safe="@"))):
                raise PermanentError(f"apprise URL #{index + 1} is not valid")
        return notifier

    async def send(self, payload: dict[str, Any]) -> None:
        notifier = self._build(payload)
        text = payload.get("text") or ""
        title, _, body = text.partition("\n")
        statuses: list[int] = []

        def capture(entry: Any, service: Any) -> None:
            match = _STATUS.search(str(getattr(entry, "message", "")))
            if match:
                statuses.append(int(match.group(1)))

        # Given as HTML with a <br> per line: e-mail gets an HTML part with its lines and
        # apprise derives the plain part from it with the breaks kept; a plain body
        # undeclared shows as one run-on paragraph in Outlook.
        result = await notifier.async_notify(
            body=as_html(body or title),
            title=title,
            body_format=_HTML,
            timeout=self.config.timeout,
            log_callback=capture,
            log_level=logging.INFO,
        )
        if bool(result):
            return
        services = ", ".join(sorted({str(s.service_name or "apprise") for s in notifier}))
        raise self._classify(services, statuses)

    def _classify(self, services: str, statuses: list[int]) -> DeliveryError:
        errors = [e for s in statuses if (e := classify_status(s, services)) is not None]
        if errors and not any(e.retryable for e in errors):
            return PermanentError(f"{services}: HTTP {statuses[0]}")
        suffix = f": HTTP {statuses[0]}" if statuses else ": delivery failed"
        return RetryableError(f"{services}{suffix}")

    async def close(self) -> None:
        return None
