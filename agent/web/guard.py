"""Connection limits for the HTTP listener: no client can hold every file descriptor.

aiohttp keeps any connection as long as its keep-alive timer allows and has no
limit on how many it holds. The listener here wraps each connection in a small
protocol that counts it; at the limit the connection quiet longest (no request
in progress) makes room, or the new one is closed at once. A connection whose
first request has not reached a handler within HEAD_TIMEOUT is dropped
(slowloris); aiohttp's keep-alive timer drops idle ones after KEEPALIVE_TIMEOUT.
Accept errors (EMFILE) are logged at most once per LOG_EVERY seconds, with a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

log = logging.getLogger("vaktpost.web")
MAX_CONNECTIONS = 512
HEAD_TIMEOUT = 10.0  # seconds from connect until the first request's headers are in
KEEPALIVE_TIMEOUT = 15.0  # idle seconds between requests (aiohttp closes then)
BODY_TIMEOUT = 10.0  # seconds to receive a request body once its headers are in
EVICT_QUIET = 1.0  # a connection this quiet may be closed to admit a new one
LOG_EVERY = 10.0
BACKLOG = 512  # a burst waits in the kernel instead of being dropped (capped by somaxconn)


def connection_limit(ceiling: int = MAX_CONNECTIONS) -> int:
    """At most half the process's descriptors, so checks and the store keep theirs."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return ceiling
    return max(8, min(ceiling, soft // 2))


class RateLimitedLog:
    """One line per `every` seconds for a recurring event, with how often it happened."""

    def __init__(self, message: str, every: float = LOG_EVERY) -> None:
        self.message, self.every = message, every
        self._count = 0
        self._last = -float("inf")

    def hit(self, **extra: Any) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            log.warning(self.message, extra={**extra, "count": self._count})
            self._count, self._last = 0, now


class _Guarded(asyncio.Protocol):
    """Stands between the transport and aiohttp's handler, and tells the gate what it sees."""

    def __init__(self, gate: ConnectionGate) -> None:
        self.gate = gate
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.last_activity = gate.clock()
        self.busy = 0  # requests in a handler now
        self.seen_request = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.gate.admit(self):
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(self.gate.head_timeout, self._head_due)
        self.inner = self.gate.make_handler()
        self.inner.connection_made(transport)

    def _head_due(self) -> None:
        if not self.seen_request and self.transport is not None:
            self.gate.slow_heads.hit()
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.gate.clock()
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self.gate.release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)
        self.transport = None


class ConnectionGate:
    """Counts the listener's connections and enforces the limit (see the module doc)."""

    def __init__(
        self,
        make_handler: Callable[[], asyncio.Protocol],
        limit: int,
        head_timeout: float = HEAD_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_handler, self.limit, self.head_timeout = make_handler, limit, head_timeout
        self.clock = clock
        self.open: dict[_Guarded, None] = {}  # insertion order = age
        self.refused = RateLimitedLog("HTTP connection limit reached; connections closed")
        self.slow_heads = RateLimitedLog("HTTP connections dropped: no request headers in time")

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    def admit(self, conn: _Guarded) -> bool:
        if len(self.open) >= self.limit:
            victim = self._quietest()
            if victim is None or victim.transport is None:
                self.refused.hit(limit=self.limit)
                return False
            self.refused.hit(limit=self.limit)
            victim.transport.abort()
            self.open.pop(victim, None)
        self.open[conn] = None
        return True

    def _quietest(self) -> _Guarded | None:
        cutoff = self.clock() - EVICT_QUIET
        best: _Guarded | None = None
        for conn in self.open:
            if conn.busy or conn.last_activity > cutoff:
                continue
            if best is None or conn.last_activity < best.last_activity:
                best = conn
        return best

    def release(self, conn: _Guarded) -> None:
        self.open.pop(conn, None)


@contextmanager
def request_in_progress(request: web.BaseRequest) -> Iterator[None]:
    """Marks the request's connection busy (never evicted) and past its head deadline."""
    transport = request.transport
    conn = transport.get_protocol() if transport is not None else None
    if not isinstance(conn, _Guarded):
        yield
        return
    conn.seen_request = True
    conn.busy += 1
    try:
        yield
    finally:
        conn.busy -= 1
        conn.last_activity = conn.gate.clock()


def _rate_limit_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    previous = loop.get_exception_handler()
    accept_errors = RateLimitedLog("cannot accept HTTP connections (out of file descriptors?)")

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept()"):
            accept_errors.hit(error=str(context.get("exception")))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections pass through a ConnectionGate."""

    __slots__ = ("gate",)

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limit: int | None = None,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        super().__init__(
            runner, host, port, ssl_context=ssl_context, backlog=BACKLOG, reuse_address=True
        )
        server = runner.server
        assert server is not None
        self.gate = ConnectionGate(server, limit or connection_limit(), head_timeout)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        _rate_limit_accept_errors(loop)
        self._server = await loop.create_server(
            self.gate,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            # The gate sees a TLS connection only after its handshake: bound that too.
            ssl_handshake_timeout=self.gate.head_timeout if self._ssl_context else None,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
