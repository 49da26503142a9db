"""Signed ack links: `{external_url}/ack/{token}`, a token that names an incident, the
step that sent it, whom it was sent to and when it expires, with an HMAC over all four.

The key is created on first use and kept in the state store under a reserved
name (so links survive a restart, and every agent of a fleet accepts them); it
is never logged or shown. A valid token is not enough: the incident must still
be open (the web layer checks that).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

KEY_OWNER = "vaktpost:ack-links"  # the per-check state API's name; no check can be called so
KEY_NAME = "hmac-key"
LINK_TTL = 7 * 86400.0  # a link in a mail read after a week's leave still says something
_TOKEN = re.compile(r"^([1-9][0-9]{0,17})\.(-|[0-9]{1,4})\.([0-9]{1,12})\.([A-Za-z0-9_-]{0,64})\.")


class LinkError(Exception):
    """Why a link is refused; the message is shown to whoever opened it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AckLink:
    incident_id: int
    step: int | None
    expires: int
    person: str | None


async def load_key(store: Any) -> bytes:
    """The link key from the store, created (32 random bytes) the first time."""
    stored = await store.get_state(KEY_OWNER, KEY_NAME)
    if isinstance(stored, str) and len(stored) >= 64:
        return bytes.fromhex(stored)
    key = secrets.token_bytes(32)
    await store.set_state(KEY_OWNER, KEY_NAME, key.hex())
    return key


class LinkSigner:
    def __init__(self, key: bytes, base_url: str) -> None:
        self._key = key
        self.base_url = base_url.rstrip("/")

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def token(self, incident_id: int, step: int | None, now: float, person: str | None) -> str:
        expires = int(now + LINK_TTL)
        body = f"{incident_id}.{'-' if step is None else step}.{expires}.{person or ''}."
        return body + self._mac(body)

    def url(self, incident_id: int, step: int | None, now: float, person: str | None) -> str:
        return f"{self.base_url}/ack/{self.token(incident_id, step, now, person)}"

    def verify(self, token: str, now: float) -> AckLink:
        match = _TOKEN.match(token)
        if match is None or len(token) > 160:
            raise LinkError("This link is not valid (damaged or not from this agent).", 400)
        body, mac = token[: match.end()], token[match.end() :]
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            raise LinkError("This link is not valid (damaged or not from this agent).", 403)
        incident, step, expires, person = match.groups()
        if int(expires) < now:
            raise LinkError("This link has expired. Acknowledge in the console or by SMS.", 410)
        return AckLink(
            int(incident), None if step == "-" else int(step), int(expires), person or None
        )
