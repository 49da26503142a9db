"""tcp check against real asyncio servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.results import ResultBook
from agent.runner import Runner
from checks.base import CheckContext, Status
from checks.tcp import TcpCheck, TcpConfig, unescape
from tests.helpers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def make(port: int, **kw: object) -> TcpCheck:
    config = TcpConfig.model_validate(
        {"name": "t", "type": "tcp", "host": "127.0.0.1", "port": port, **kw}
    )
    return TcpCheck(config, CheckContext(Path("/tmp"), "test"))


async def run(check: TcpCheck) -> tuple[Status, str, float]:
    start = time.perf_counter()
    result = await Runner(ResultBook(), 10).run(check)
    return result.status, result.message, time.perf_counter() - start


async def test_open_port_is_ok(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    port = await serve(accept)
    status, message, _ = await run(make(port))
    assert status is Status.OK
    assert message == f"connected to 127.0.0.1:{port}"


async def test_refused_port_is_critical() -> None:
    port = free_port()
    status, message, _ = await run(make(port))
    assert status is Status.CRITICAL
    assert message == f"connect to 127.0.0.1:{port} failed: connection refused"


async def test_silent_peer_times_out_on_time(serve: Callable[[Handler], Awaitable[int]]) -> None:
    hold = asyncio.Event()

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await hold.wait()
        w.close()

    port = await serve(silent)
    status, message, took = await run(make(port, expect="^SSH-", timeout="300ms"))
    hold.set()
    assert status is Status.CRITICAL
    assert message == f"127.0.0.1:{port} sent nothing"
    assert 0.25 <= took < 0.3 * 1.1


async def test_banner_match_and_mismatch(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def smtp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 mail.kommun.local ESMTP ready\r\n")
        line = await r.readline()
        w.write(b"250 hello " + line.split(b" ", 1)[-1])
        await w.drain()
        w.close()

    port = await serve(smtp)
    ok = await run(make(port, send="EHLO vaktpost\\r\\n", expect=r"250 hello vaktpost\r\n"))
    assert ok[0] is Status.OK, ok[1]
    bad = await run(make(port, expect="^SSH-2.0", timeout="500ms"))
    assert bad[0] is Status.CRITICAL
    assert bad[1] == (
        f"127.0.0.1:{port} reply does not match '^SSH-2.0': "
        "got '220 mail.kommun.local ESMTP ready\\r\\n'"
    )


def test_send_escapes() -> None:
    assert unescape("GET / HTTP/1.0\\r\\n\\r\\n") == "GET / HTTP/1.0\r\n\r\n"
    assert unescape("tab\\there") == "tab\there"


def test_os_error_texts_are_plain_words() -> None:
    import errno
    import socket

    from checks.base import os_error_text

    # Built by hand: resolving a name for real would ask a DNS server off loopback.
    assert os_error_text(socket.gaierror(socket.EAI_NONAME, "Name or service not known")) == (
        "cannot resolve the name: name or service not known"
    )
    assert os_error_text(ConnectionRefusedError(errno.ECONNREFUSED, "x")) == "connection refused"
    assert os_error_text(TimeoutError()) == "timed out"
