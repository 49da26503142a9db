"""Cross-site request forgery: what a write must show before any handler runs.

A browser lets any page send a "simple" cross-site POST (form or text/plain
body, no custom headers) and attaches cached basic-auth credentials to it. It
never sends `Content-Type: application/json` cross-site without a CORS
preflight, which this server does not grant; and it names the page's origin in
`Origin` (or `Referer`). So a write needs a JSON body type and, when either
header is present, the server's own origin. Forms (the operator console, later)
will carry a signed token from `issue_token` instead of the JSON type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
TOKEN_TTL = 3600.0
_MACHINE = "vaktpost_machine_to_machine"
_FORM = "vaktpost_form_with_token"
H = TypeVar("H", bound=Callable[..., Any])


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL; None when it has none (e.g. `null`)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def request_origin(request: web.Request) -> tuple[str, str, int] | None:
    return _origin_of(f"{request.scheme}://{request.host}")


def machine_to_machine(handler: H) -> H:
    """Marks a handler that authenticates each request by its own token (push pings,
    Alertmanager's webhook): a browser never holds that token, so there is nothing to
    forge, and its callers (curl, Invoke-RestMethod, Alertmanager) send any body type."""
    setattr(handler, _MACHINE, True)
    return handler


def form_with_token(handler: H) -> H:
    """Marks a handler that takes a browser form (the console's ack button): exempt
    from the JSON-only rule because it checks a signed token from `TokenSigner`
    itself; Origin and Referer must still name this server."""
    setattr(handler, _FORM, True)
    return handler


def cross_site_reason(request: web.Request) -> str | None:
    """Why this write may have come from another site, or None when it may run."""
    if request.method not in WRITE_METHODS:
        return None
    if getattr(request.match_info.handler, _MACHINE, False):
        return None
    ctype = request.headers.get("Content-Type", "")
    form = getattr(request.match_info.handler, _FORM, False)
    if not form and ctype.partition(";")[0].strip().lower() != "application/json":
        return "writes need Content-Type: application/json"
    own = request_origin(request)
    origin = request.headers.get("Origin")
    if origin is not None:
        if own is None or _origin_of(origin) != own:
            return "cross-origin write refused (Origin does not match this server)"
        return None
    referer = request.headers.get("Referer")
    if referer is not None and (own is None or _origin_of(referer) != own):
        return "cross-origin write refused (Referer does not match this server)"
    return None


class TokenSigner:
    """Signed, expiring CSRF tokens bound to a subject (a user name or session).

    The key lives in memory only: a restart invalidates every token, which only
    means a form has to be loaded again.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, subject: str, expires: int) -> bytes:
        message = f"{expires}:{subject}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue(self, subject: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TOKEN_TTL)
        mac = base64.urlsafe_b64encode(self._mac(subject, expires)).decode().rstrip("=")
        return f"{expires}.{mac}"

    def valid(self, token: str, subject: str, now: float | None = None) -> bool:
        expires_text, sep, mac_text = token.partition(".")
        if not sep or not expires_text.isascii() or not expires_text.isdigit():
            return False
        if len(expires_text) > 12:
            return False
        expires = int(expires_text)
        if expires < (time.time() if now is None else now):
            return False
        try:
            mac = base64.urlsafe_b64decode(mac_text + "=" * (-len(mac_text) % 4))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(mac, self._mac(subject, expires))
