"""Real loopback servers for the network probe tests, run in a thread with their own loop.

A thread keeps them independent of each test's event loop, so one set serves a
whole module (and blackbox_exporter, a separate process) without restarts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers import require as require  # re-exported for the net tests
from tests.helpers import require_binary as require_binary
from tests.net_certs import Pki

AUTH_USER, AUTH_PASSWORD = "ops", "s3cret-pässword"
BIG_BODY = 100 * 1024 * 1024
CHUNK = b"x" * 65536


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class LoopThread:
    """An asyncio loop in a daemon thread; coroutines are submitted to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _ok(_req: web.Request) -> web.Response:
    return web.Response(text="OK: vaktpost test target", headers={"X-Test": "yes"})


async def _status(req: web.Request) -> web.Response:
    return web.Response(status=int(req.match_info["code"]), text="status page")


async def _redirect(req: web.Request) -> web.Response:
    n = int(req.match_info["n"])
    raise web.HTTPFound("/ok" if n <= 1 else f"/redirect/{n - 1}")


async def _loop(req: web.Request) -> web.Response:
    raise web.HTTPFound("/loop/b" if req.match_info["side"] == "a" else "/loop/a")


async def _slow(_req: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text="late")


async def _big(req: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Length": str(BIG_BODY)})
    await resp.prepare(req)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        for _ in range(BIG_BODY // len(CHUNK)):  # generated as it goes: never held in memory
            await resp.write(CHUNK)
    return resp


async def _gzip(_req: web.Request) -> web.Response:
    resp = web.Response(text="compressed hello " * 200)
    resp.enable_compression(web.ContentCoding.gzip)
    return resp


async def _auth(req: web.Request) -> web.Response:
    token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    if req.headers.get("Authorization") != f"Basic {token}":
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="t"'})
    return web.Response(text="welcome")


async def _echo_method(req: web.Request) -> web.Response:
    body = await req.text()
    return web.Response(text=f"{req.method} {body} {req.headers.get('X-Probe', '')}")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo_method)
    app.router.add_get("/ok", _ok)
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_get("/loop/{side}", _loop)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/auth", _auth)
    return app


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, then says nothing until the client leaves."""
    with contextlib.suppress(ConnectionError):
        await reader.read()
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        await reader.read(1024)
        writer.write(b"\x00\x16\xffNOT HTTP AT ALL\r\n\r\ngarbage")
        await writer.drain()
    writer.close()


@dataclass
class Targets:
    """Ports of every target; URLs built from them."""

    http: int = 0
    http6: int = 0
    silent: int = 0
    garbage: int = 0
    closed: int = 0
    tls: dict[str, int] = field(default_factory=dict)
    mtls: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def tls_url(self, name: str, path: str = "/ok", host: str = "localhost") -> str:
        return f"https://{host}:{self.tls[name]}{path}"


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _site(runner: web.AppRunner, host: str, ssl_context: Any = None) -> int:
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    return int(server.sockets[0].getsockname()[1])


class ServerSet:
    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.targets = Targets()
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> Targets:
        t = self.targets
        self._runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        t.http = await _site(self._runner, "127.0.0.1")
        if has_ipv6_loopback():
            t.http6 = await _site(self._runner, "::1")
        for name, cert in self.pki.certs.items():
            if name != "client":
                t.tls[name] = await _site(self._runner, "127.0.0.1", cert.server_context())
        mtls = self.pki.certs["valid"].server_context()
        mtls.verify_mode = ssl.CERT_REQUIRED
        mtls.load_verify_locations(self.pki.ca_file)
        t.mtls = await _site(self._runner, "127.0.0.1", mtls)
        t.silent = await self._raw(_silent)
        t.garbage = await self._raw(_garbage)
        t.closed = closed_port()
        return t

    async def _raw(self, handler: Callable[..., Awaitable[None]]) -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._clients.add(writer)
            try:
                await handler(reader, writer)
            finally:
                self._clients.discard(writer)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._clients):
            writer.transport.abort()  # wakes the silent handler so it ends cleanly
        await asyncio.sleep(0)
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.contextmanager
def running_servers(pki: Pki) -> Iterator[Targets]:
    thread = LoopThread()
    servers = ServerSet(pki)
    try:
        yield thread.call(servers.start())
    finally:
        thread.call(servers.stop())
        thread.stop()
