"""What every channel implements: send one payload, and say whether a failure may retry.

Retry, backoff, dedup, fallback and "record as sent" live in the outbox, around
every channel; a channel only delivers once and classifies what went wrong.
Error texts never contain secrets (URLs are reduced to scheme://host:port).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit


class DeliveryError(Exception):
    """A failed delivery; the message is safe to log and to show."""

    retryable = True


class RetryableError(DeliveryError):
    """Try again later: 5xx, 429, timeouts, connection refused."""


class PermanentError(DeliveryError):
    """Retrying will not help: other 4xx, bad config, missing program."""

    retryable = False


class Channel(Protocol):
    name: str

    async def send(self, payload: dict[str, Any]) -> None:
        """Deliver once. Raises RetryableError or PermanentError."""

    async def close(self) -> None: ...


def safe_url(url: str) -> str:
    """scheme://host:port only: paths, queries and userinfo may carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}"


def classify_status(status: int, where: str) -> DeliveryError | None:
    """None for 2xx/3xx; 408, 429 and 5xx retry; other 4xx do not."""
    if status < 400:
        return None
    text = f"{where}: HTTP {status}"
    if status in (408, 429) or status >= 500:
        return RetryableError(text)
    return PermanentError(text)
