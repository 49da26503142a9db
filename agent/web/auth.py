"""Who may read and write over HTTP: an operator by basic auth, or loopback without users.

With `agent.web.users` configured every write needs an operator's password
(bcrypt, checked off the event loop). Without users, writes are accepted only
from loopback addresses, through a loopback host name (so a DNS-rebound page
cannot write). The login guard answers unknown users and over-long passwords
after the same bcrypt work as a real check, locks out an address after repeated
failures, and remembers successful checks briefly (docs/security.md).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from aiohttp import web

from agent.config import WebConfig, WebUser

log = logging.getLogger("vaktpost.auth")
BCRYPT_MAX_PASSWORD = 72  # bytes; bcrypt ignores (or, in bcrypt 5, refuses) the rest
MAX_FAILURES = 10  # failed logins per address ...
FAILURE_WINDOW = 60.0  # ... within this many seconds, then 429 until the oldest ages out
SUCCESS_TTL = 60.0  # a verified login is trusted this long without bcrypt
MAX_TRACKED = 4096  # addresses and cached logins kept, oldest dropped first
BCRYPT_CONCURRENCY = 2  # bcrypt threads at once: a login flood cannot take every core
_LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


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


def is_loopback_host(host_header: str | None) -> bool:
    """The Host header names loopback: an address literal or localhost, with any port."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host in _LOOPBACK_NAMES or is_loopback(host)


def client_key(remote: str | None) -> str:
    """The unit a failure counts against: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return remote or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One IPv6 host usually holds a whole /64: per address would be no limit.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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


def bcrypt_cost(password_hash: str) -> int | None:
    """The cost of a `$2b$12$...` hash, None when it is not a bcrypt hash."""
    parts = password_hash.split("$")
    if len(parts) == 4 and parts[1] in ("2a", "2b", "2y") and parts[2].isdigit():
        cost = int(parts[2])
        return cost if 4 <= cost <= 31 else None
    return None


@functools.cache
def _dummy_hash(cost: int) -> bytes:
    import bcrypt  # at the first login: ~0.4 MiB an agent without users never loads

    return bcrypt.hashpw(b"vaktpost-dummy", bcrypt.gensalt(rounds=cost))


class LoginGuard:
    """Failed-login limits per address and a short cache of verified logins (memory only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._bcrypt_slots: asyncio.Semaphore | None = None
        self.bcrypt_checks = 0  # how often bcrypt ran: the cache's effect, for tests

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None when it is not locked out."""
        now = self.clock()
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - FAILURE_WINDOW:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < MAX_FAILURES:
            return None
        return max(1, math.ceil(times[0] + FAILURE_WINDOW - now))

    def record_failure(self, key: str) -> None:
        times = self._failures.pop(key, None) or deque(maxlen=MAX_FAILURES)
        times.append(self.clock())
        self._failures[key] = times
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def forgive_last(self, key: str) -> None:
        times = self._failures.get(key)
        if times:
            times.pop()

    def cached(self, token: bytes) -> bool:
        expires = self._verified.get(token)
        if expires is None:
            return False
        if expires <= self.clock():
            del self._verified[token]
            return False
        return True

    def remember(self, token: bytes) -> None:
        self._verified[token] = self.clock() + SUCCESS_TTL
        self._verified.move_to_end(token)
        while len(self._verified) > MAX_TRACKED:
            self._verified.popitem(last=False)

    async def checkpw(self, password: bytes, hashed: bytes) -> bool:
        import bcrypt  # at the first login: ~0.4 MiB an agent without users never loads

        if self._bcrypt_slots is None:
            self._bcrypt_slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        self.bcrypt_checks += 1
        async with self._bcrypt_slots:
            return await asyncio.to_thread(bcrypt.checkpw, password, hashed)


GUARD_KEY: web.AppKey[LoginGuard] = web.AppKey("login_guard", LoginGuard)
# Apps built without build_app (small test servers) share this one.
_fallback_guard = LoginGuard()


def guard_of(request: web.Request) -> LoginGuard:
    return request.config_dict.get(GUARD_KEY) or _fallback_guard


def _login_token(user: str, password: str, password_hash: str) -> bytes:
    # The hash is part of the key: a changed password_hash invalidates the entry.
    return hashlib.sha256(
        b"\0".join(s.encode("utf-8", "surrogatepass") for s in (user, password, password_hash))
    ).digest()


def _dummy_cost(web_config: WebConfig) -> int:
    costs = [c for u in web_config.users.values() if (c := bcrypt_cost(u.password_hash))]
    return max(costs, default=12)


async def _verify(guard: LoginGuard, entry: WebUser | None, password: str, cost: int) -> bool:
    """bcrypt work of the same cost whether the user exists or the password fits."""
    raw = password.encode("utf-8", "surrogatepass")
    usable = entry is not None and bcrypt_cost(entry.password_hash) is not None
    if entry is None or not usable or len(raw) > BCRYPT_MAX_PASSWORD or b"\0" in raw:
        if entry is not None and not usable:
            log.error("a configured password_hash is not a bcrypt hash; that user cannot log in")
        dummy = await asyncio.to_thread(_dummy_hash, cost)  # made once per cost
        await guard.checkpw(b"x", dummy)
        return False
    try:
        return await guard.checkpw(raw, entry.password_hash.encode())
    except ValueError:  # a malformed salt inside an otherwise bcrypt-looking hash
        log.error("a configured password_hash is not a valid bcrypt hash")
        return False


async def authenticate(request: web.Request, web_config: WebConfig) -> tuple[str, str]:
    """(user, role) of a valid login; raises 401, or 429 for a locked-out address."""
    creds = _credentials(request)
    if creds is None:
        raise _unauthorized("authentication required")
    guard = guard_of(request)
    key = client_key(request.remote)
    # Before the cache too: a locked-out address must not test guesses against it.
    wait = guard.retry_after(key)
    if wait is not None:
        raise web.HTTPTooManyRequests(
            reason="too many failed logins; try again later",
            headers={"Retry-After": str(wait)},
        )
    user, password = creds
    entry = web_config.users.get(user)
    token = _login_token(user, password, entry.password_hash) if entry is not None else None
    if entry is not None and token is not None and guard.cached(token):
        return user, entry.role
    # Counted before the check and forgiven on success, so parallel guesses count too.
    guard.record_failure(key)
    if not await _verify(guard, entry, password, _dummy_cost(web_config)):
        log.warning("failed login", extra={"remote": request.remote})
        raise _unauthorized("invalid user or password")
    assert entry is not None and token is not None
    guard.forgive_last(key)
    guard.remember(token)
    return user, entry.role


async def require_operator(request: web.Request, web_config: WebConfig) -> str | None:
    """The operator's user name (None when no users are configured and the caller is local)."""
    if not web_config.users:
        if not is_loopback(request.remote):
            raise web.HTTPForbidden(reason="writes are accepted from loopback only")
        if not is_loopback_host(request.host):
            raise web.HTTPForbidden(
                reason="without agent.web.users, writes must address 127.0.0.1, ::1 or localhost"
            )
        return None
    user, role = await authenticate(request, web_config)
    if role != "operator":
        raise web.HTTPForbidden(reason="an operator is required")
    return user


async def require_reader(request: web.Request, web_config: WebConfig) -> None:
    if web_config.users and web_config.read_requires_auth:
        await authenticate(request, web_config)
