"""Connection limits (issue 9, item 8): idle floods, slowloris, accept errors.

The flood runs against a real daemon whose descriptors are limited to 1,024 like a
default systemd service; this test process raises its own limit to open 2,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import resource
import select
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.web.guard import HEAD_TIMEOUT, KEEPALIVE_TIMEOUT, GuardedSite, _rate_limit_accept_errors
from tests.alerting_fixtures import log_records
from tests.helpers import ROOT, async_wait_until, free_port, vaktpost_cmd, wait_until

FLOOD = 2000
DAEMON_FDS = 1024


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DAEMON_FDS, DAEMON_FDS))


@pytest.fixture(scope="module")
def own_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FLOOD + 512
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):
            pytest.skip(f"cannot raise this process's descriptor limit to {want} (not root?)")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, own_fds: None) -> Iterator[tuple[int, Path]]:
    tmp = tmp_path_factory.mktemp("limits")
    port = free_port()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"agent: {{listen: '127.0.0.1:{port}', state_dir: {tmp}/s}}\n"
        "checks: [{name: mem, type: memory, interval: 200ms}]\n"
    )
    log = tmp / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            vaktpost_cmd("run", "-c", str(cfg)),
            stdout=out,
            stderr=out,
            cwd=ROOT,
            preexec_fn=_limit_fds,
        )
    try:
        wait_until(lambda: _status(port, "/healthz") == 200, 15, "the agent")
        yield port, log
    finally:
        proc.kill()
        proc.wait()


def _status(port: int, path: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return int(r.status)
    except OSError:
        return 0


def _mem_runs(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith('vaktpost_check_runs_total{check="mem"')
    )


def _accept_queue(port: int) -> int:
    """Connections the kernel holds for the listener, not yet accepted by the agent."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                return int(fields[4].partition(":")[2], 16)
    raise AssertionError(f"no listener on port {port}")


def _open_idle(port: int, count: int, batch: int = 100) -> list[socket.socket]:
    """Idle connections that all reach the agent: in batches the accept queue holds,
    because a connection the kernel dropped from a full queue never reaches it at all."""
    socks: list[socket.socket] = []
    while len(socks) < count:
        for _ in range(min(batch, count - len(socks))):
            s = socket.socket()
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            assert err in (0, errno.EINPROGRESS), os.strerror(err)
            socks.append(s)
        wait_until(lambda: _accept_queue(port) == 0, 10, "the agent to accept the batch")
    return socks


def _peer_closed(socks: list[socket.socket]) -> int:
    poller = select.poll()  # select() cannot watch descriptors past 1,024
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    return len(poller.poll(0))


def test_idle_flood_leaves_metrics_and_checks_working(agent: tuple[int, Path]) -> None:
    port, log = agent
    socks = _open_idle(port, FLOOD)
    try:
        # Those past the limit are closed at once, not held: wait until the agent has
        # answered every connection one way or the other, then ask it something.
        wait_until(lambda: _peer_closed(socks) >= FLOOD - 512 - 50, 20, "extras to be closed")
        start = time.monotonic()
        wait_until(lambda: _status(port, "/metrics", timeout=5) == 200, 10, "/metrics")
        assert time.monotonic() - start < 10
        runs = _mem_runs(port)
        wait_until(lambda: _mem_runs(port) > runs + 2, 10, "the memory check to keep running")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/checks", timeout=5) as r:
            (mem,) = json.loads(r.read())["checks"]
        assert mem["status"] == "ok", mem
    finally:
        for s in socks:
            s.close()
    records = log_records(log)
    limit_lines = [r for r in records if "connection limit" in str(r.get("msg"))]
    assert 1 <= len(limit_lines) <= 3, "rate limited, with a count"
    assert limit_lines[0]["count"] >= 1
    assert log.stat().st_size < 200_000


def test_slow_and_idle_clients_are_dropped(agent: tuple[int, Path]) -> None:
    port, _ = agent
    slowloris = socket.create_connection(("127.0.0.1", port), timeout=5)
    slowloris.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    keepalive = socket.create_connection(("127.0.0.1", port), timeout=5)
    keepalive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in keepalive.recv(4096)
    start = time.monotonic()
    closed: dict[str, float] = {}
    names = {slowloris: "slowloris", silent: "silent", keepalive: "keepalive"}
    deadline = start + KEEPALIVE_TIMEOUT + 5
    try:
        while len(closed) < 3 and time.monotonic() < deadline:
            readable, _, _ = select.select(
                [s for s in names if names[s] not in closed], [], [], 0.5
            )
            for s in readable:
                with contextlib.suppress(ConnectionResetError):
                    if s.recv(4096):
                        continue
                closed[names[s]] = time.monotonic() - start
            if "slowloris" not in closed:
                with contextlib.suppress(OSError):
                    slowloris.sendall(b"X-Slow: 1\r\n")  # a header line every 0.5 s
    finally:
        for s in names:
            s.close()
    assert closed.get("slowloris", 99) < HEAD_TIMEOUT + 3, closed
    assert closed.get("silent", 99) < HEAD_TIMEOUT + 3, closed
    assert closed.get("keepalive", 99) < KEEPALIVE_TIMEOUT + 4, closed


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_at_the_limit_the_quietest_idle_connection_makes_room() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    from agent.web.app import errors_as_json  # marks connections busy, as in the agent

    app.middlewares.append(errors_as_json)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limit=3)
    clock = FakeClock()
    site.gate.clock = clock
    await site.start()
    loop = asyncio.get_running_loop()
    try:
        busy_r, busy_w = await asyncio.open_connection("127.0.0.1", site.port)
        busy_w.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await busy_w.drain()
        await async_wait_until(lambda: any(c.busy for c in site.gate.open))
        idle = [await asyncio.open_connection("127.0.0.1", site.port) for _ in range(2)]
        await async_wait_until(lambda: len(site.gate.open) == 3)
        # Nobody has been quiet long enough: the newcomer is closed at once.
        r, w = await asyncio.open_connection("127.0.0.1", site.port)
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
        # Later, the oldest idle one goes; the busy request is never the one.
        clock.now += 5
        newcomer = await asyncio.open_connection("127.0.0.1", site.port)
        assert await asyncio.wait_for(idle[0][0].read(), 5) == b""
        assert len(site.gate.open) == 3
        release.set()
        head = await asyncio.wait_for(busy_r.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        for _, writer in [*idle, newcomer, (busy_r, busy_w)]:
            writer.close()
    finally:
        release.set()
        await runner.cleanup()
    assert loop.is_running()


async def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    _rate_limit_accept_errors(loop)
    try:
        with caplog.at_level(logging.WARNING, logger="vaktpost.web"):
            for _ in range(1000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(errno.EMFILE, "Too many open files"),
                    }
                )
    finally:
        loop.set_exception_handler(previous)
    lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
    assert len(lines) == 1
