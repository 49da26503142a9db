"""Helpers for the alerting tests (not a conftest: import what you need)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web

from agent.config import Config
from agent.configload import load_config_text
from alerting.engine import IncidentEngine
from alerting.model import Event, Notification, Outcome

# The shared helpers, re-exported under their older names for tests that import them here.
from tests.helpers import CI as CI
from tests.helpers import ROOT as ROOT
from tests.helpers import async_wait_until, wait_until
from tests.helpers import daemon as daemon
from tests.helpers import free_port as free_port
from tests.helpers import vaktpost_cmd as vaktpost_cmd

wait_for = wait_until
async_wait_for = async_wait_until

# One failing check on one system, escalated over `steps` to a webhook: the config
# of the process-level escalation tests (restarts, kill -9, stores, fleets).
LADDER_CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
{agent_extra}  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  hook: {{type: webhook, url: "{hook}", concurrency: 1}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
{repeat}    escalation:
{ladder}
"""


def ladder_config(
    *,
    name: str,
    port: int,
    state: Path,
    hook: str,
    closed: int,
    steps: Sequence[float] = (0.0,),
    repeat: float | None = None,
    agent_extra: Sequence[str] = (),
) -> str:
    """LADDER_CONFIG filled in; `agent_extra` are more `agent:` lines (store, fleet)."""
    return LADDER_CONFIG.format(
        name=name,
        port=port,
        state=state,
        hook=hook,
        closed=closed,
        agent_extra="".join(f"  {line}\n" for line in agent_extra),
        repeat=f"    repeat: {repeat}s\n" if repeat else "",
        ladder="\n".join(f"      - {{after: {s}s, notify: [hook]}}" for s in steps),
    )


BASE_YAML = """
agent:
  name: test-agent
  language: en
  timezone: Europe/Stockholm
  state_dir: {state_dir}
channels:
  oncall: {{type: log, default: true}}
  manager: {{type: log}}
  crisis: {{type: log}}
  top: {{type: log}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 2}}
  - {{name: db, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 2,
      successes_before_recovery: 2, labels: {{owner: dba}}}}
  - {{name: lonely, type: tcp, host: 127.0.0.1, port: 1}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - id: case
        name: Treserva
        checks: [web, db]
        rto: 2h
        mtpd: 8h
        fallback: Paper forms in binder B.
    escalation:
      - {{after: 0m, notify: [oncall]}}
      - {{after: 30m, notify: [manager]}}
      - {{after: 50% rto, notify: [manager]}}
      - {{after: rto, notify: [crisis], message: "RTO breached: start the fallback routine"}}
      - {{after: mtpd, notify: [top]}}
{extra}
"""


def config_from(yaml_text: str) -> Config:
    return load_config_text(yaml_text, "test.yaml")


def base_config(extra: str = "", state_dir: str = "/tmp/vaktpost-test-unused") -> Config:
    return config_from(BASE_YAML.format(state_dir=state_dir, extra=extra))


class Timeline:
    """Drives an engine on a simulated clock and keeps everything it emitted."""

    def __init__(self, engine: IncidentEngine, start: float) -> None:
        self.engine = engine
        self.start = start
        self.now = start
        self.events: list[Event] = []
        self.notifications: list[Notification] = []

    def take(self, out: Outcome) -> Outcome:
        self.events += out.events
        self.notifications += out.notifications
        return out

    def result(self, check: str, status: str, times: int = 1) -> None:
        for _ in range(times):
            self.take(self.engine.observe(check, status, f"{check} is {status}", self.now))

    def advance_to(self, seconds: float) -> None:
        """Tick at every moment the engine asks for, up to start + seconds."""
        end = self.start + seconds
        while True:
            nxt = self.engine.next_wakeup(self.now)
            if nxt is None or nxt > end:
                break
            self.now = nxt
            self.take(self.engine.tick(self.now))
        self.now = end
        self.take(self.engine.tick(self.now))

    def sent(self, kind: str | None = None) -> list[tuple[float, str, str]]:
        """(seconds since start, channel, dedup-key suffix after the incident id)."""
        return [
            (round(n.created_at - self.start, 3), n.channel, n.dedup_key.split("/", 4)[4])
            for n in self.notifications
            if kind is None or n.kind == kind
        ]

    def kinds(self) -> list[tuple[float, str, int | None]]:
        return [(round(e.at - self.start, 3), e.kind, e.step) for e in self.events]


class Receiver:
    """An aiohttp webhook receiver on a free loopback port that records every delivery."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.status = 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.status >= 300:
            return web.Response(status=self.status, text="nope")
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        self.received.append(await request.json())
        return web.Response(text="ok")

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def dedup_keys(self) -> list[str]:
        return [r["dedup_key"] for r in self.received]


class TcpTarget:
    """A loopback port a tcp check can reach while open() and not after close().

    While closed the port stays bound without listening: connects are refused at
    once, and the kernel cannot hand the port to anyone else -- neither to another
    program nor as the source port of the check's own connect (a TCP self-connect
    to a closed ephemeral port succeeds, and turns an outage into a flap).
    """

    # Every target, so that tests/conftest.py releases each one when its test (or,
    # for a module fixture's, the session) ends: a target left to the garbage
    # collector may lose its socket before its own __del__ runs (ResourceWarning).
    created: ClassVar[list[TcpTarget]] = []

    def __init__(self) -> None:
        self._sock = self._bound(0)
        self.port = int(self._sock.getsockname()[1])
        self._listening = False
        TcpTarget.created.append(self)

    @staticmethod
    def _bound(port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    def open(self) -> None:
        if not self._listening:
            self._sock.listen(1024)  # never accepted: room for every probe of a test
            self._listening = True

    def close(self) -> None:
        if self._listening:
            self._sock.close()  # drops the accepted backlog too
            self._sock = self._bound(self.port)
            self._listening = False

    def release(self) -> None:
        """Give the port back (end of test)."""
        self._sock.close()
        self._listening = False

    def __enter__(self) -> TcpTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ThreadedReceiver:
    """A Receiver on its own event loop thread: it answers while the test blocks."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self.arrivals: list[tuple[float, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedReceiver:
        original = self.receiver._handle

        async def recording(request: web.Request) -> web.Response:
            before = len(self.receiver.received)
            response = await original(request)
            if len(self.receiver.received) > before:
                last = self.receiver.received[-1]
                self.arrivals.append((time.monotonic(), str(last.get("dedup_key", ""))))
            return response

        self.receiver._handle = recording  # type: ignore[method-assign]
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url(self) -> str:
        return self.receiver.url

    def dedup_keys(self) -> list[str]:
        return [k for _, k in list(self.arrivals)]


class PingServer:
    """A threaded aiohttp server on a free loopback port that answers any GET.

    It records (monotonic time, path with query) of every request, and behaves as
    `mode` says: "ok" (200), "error" (500) or "hang" (never answers until stopped).
    Stands in for a dead man's switch receiver and for a peer agent's /healthz.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[float, str]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((time.monotonic(), request.path_qs))
        if self.mode == "hang":
            assert self._release is not None
            await self._release.wait()
        if self.mode == "error":
            return web.Response(status=500, text="broken")
        return web.json_response({"status": "ok"})

    async def _start(self, port: int) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        asyncio.run_coroutine_threadsafe(self._start(self.port), self._loop).result(5)

    def stop(self) -> None:
        """Stop listening: connections are refused until start()."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)

    def __enter__(self) -> PingServer:
        self._thread.start()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def paths(self, prefix: str = "") -> list[str]:
        return [p for _, p in list(self.requests) if p.startswith(prefix)]


def log_records(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a daemon (its stderr is not a TTY, so it logs JSON)."""
    import json

    records = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def metric_value(text: str, series: str) -> float | None:
    """The value of one exact series line, e.g. 'vaktpost_peer_up{peer="..."}'."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body); (0, reason) when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)
