"""Who may read and write over HTTP: an operator by basic auth, or loopback without users.

With `agent.web.users` configured every write needs an operator's password
(bcrypt, checked off the event loop). Without users, writes are accepted only
from loopback addresses, until the web layer is hardened.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ipaddress

import bcrypt
from aiohttp import web

from agent.config import WebConfig


def _unauthorized(reason: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        reason=reason, headers={"WWW-Authenticate": 'Basic realm="vaktpost"'}
    )


def is_loopback(remote: str | None) -> bool:
    """The peer address is loopback (127.0.0.0/8, ::1, or 127.x as an IPv4-mapped IPv6)."""
    if remote is None:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False  # e.g. a unix socket: not a network peer we can vouch for
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


async def authenticate(request: web.Request, web_config: WebConfig) -> tuple[str, str]:
    """(user, role) of a valid login; raises 401 otherwise."""
    creds = _credentials(request)
    if creds is None:
        raise _unauthorized("authentication required")
    user, password = creds
    entry = web_config.users.get(user)
    if entry is None:
        # Spend the same time as a real check, so user names cannot be probed.
        await asyncio.to_thread(bcrypt.checkpw, b"x", _dummy_hash())
        raise _unauthorized("invalid user or password")
    ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), entry.password_hash.encode())
    if not ok:
        raise _unauthorized("invalid user or password")
    return user, entry.role


async def require_operator(request: web.Request, web_config: WebConfig) -> str | None:
    """The operator's user name (None when no users are configured and the caller is local)."""
    if not web_config.users:
        if not is_loopback(request.remote):
            raise web.HTTPForbidden(reason="writes are accepted from loopback only")
        return None
    user, role = await authenticate(request, web_config)
    if role != "operator":
        raise web.HTTPForbidden(reason="an operator is required")
    return user


async def require_reader(request: web.Request, web_config: WebConfig) -> None:
    if web_config.users and web_config.read_requires_auth:
        await authenticate(request, web_config)


@functools.cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"vaktpost", bcrypt.gensalt(rounds=12))
