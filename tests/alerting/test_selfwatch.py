"""Self-watch against real servers: the heartbeat (dead man's switch) pings a receiver,
stops when removed or when the agent stops, and never hurts the agent when the
receiver fails; peers are real daemons watching each other."""

from __future__ import annotations

import itertools
import signal
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from tests.alerting_fixtures import (
    PingServer,
    ThreadedReceiver,
    http_get,
    log_records,
    metric_value,
)
from tests.helpers import async_wait_until, daemon, free_port, wait_until

HEARTBEAT = """
agent:
  name: hb
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s}}
{heartbeat}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: alive, type: tcp, host: 127.0.0.1, port: {target}}}
"""


def heartbeat_config(tmp: Path, port: int, target: int, url: str | None, state: str = "s") -> Path:
    cfg = tmp / "cfg.yaml"
    line = f'  heartbeat: {{url: "{url}", interval: 200ms}}' if url else ""
    cfg.write_text(HEARTBEAT.format(port=port, state=tmp / state, heartbeat=line, target=target))
    return cfg


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        return http_get(base + "/readyz")[0] == 200

    wait_until(ready, 15, f"{base} ready")


def reload(proc: subprocess.Popen[bytes], log: Path) -> None:
    before = sum(r.get("msg") == "config reloaded" for r in log_records(log))
    proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: sum(r.get("msg") == "config reloaded" for r in log_records(log)) > before,
        5,
        "config reloaded",
    )


def runs_total(base: str, check: str) -> float:
    text = http_get(base + "/metrics")[1]
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(f'vaktpost_check_runs_total{{check="{check}"')
    )


def test_heartbeat_pings_follow_reloads_and_stop_with_the_agent(tmp_path: Path) -> None:
    token, token2 = uuid.uuid4().hex, uuid.uuid4().hex
    with PingServer() as receiver:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{receiver.port}/ping/{token}"
        cfg = heartbeat_config(tmp_path, port, receiver.port, url)
        log = tmp_path / "daemon.log"
        with daemon(cfg, log) as proc:
            wait_ready(base, proc, log)
            wait_until(lambda: len(receiver.paths(f"/ping/{token}")) >= 6, 10, "6 pings")
            times = [t for t, p in list(receiver.requests) if p == f"/ping/{token}"]
            gap = statistics.median(b - a for a, b in itertools.pairwise(times))
            assert 0.12 < gap < 0.5, f"pings every {gap:.3f}s, want ~0.2s"

            # Removed by a reload: the running agent stops pinging.
            heartbeat_config(tmp_path, port, receiver.port, None)
            reload(proc, log)
            after_reload = len(receiver.requests)
            quiet_until = time.monotonic() + 1.0  # five intervals
            wait_until(
                lambda: time.monotonic() > quiet_until and http_get(base + "/healthz")[0] == 200,
                5,
                "five heartbeat intervals",
            )
            assert len(receiver.requests) <= after_reload + 1, "at most one ping in flight"
            assert proc.poll() is None

            # Changed by a reload: the new URL is pinged.
            heartbeat_config(tmp_path, port, receiver.port, url.replace(token, token2))
            reload(proc, log)
            wait_until(lambda: len(receiver.paths(f"/ping/{token2}")) >= 3, 10, "new URL pinged")
            pinged_old = len(receiver.paths(f"/ping/{token}"))

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0, log.read_text()[-3000:]
            stopped = len(receiver.requests)
            assert len(receiver.paths(f"/ping/{token}")) == pinged_old
        quiet_until = time.monotonic() + 0.6
        wait_until(lambda: time.monotonic() > quiet_until, 2, "three intervals after the stop")
        assert len(receiver.requests) == stopped


def test_failing_heartbeat_receiver_never_blocks_the_agent_nor_leaks_the_token(
    tmp_path: Path,
) -> None:
    token, secret = uuid.uuid4().hex, uuid.uuid4().hex
    with PingServer() as receiver, PingServer() as target:
        receiver.mode = "hang"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"http://user:pw-{secret}@127.0.0.1:{receiver.port}/ping/{token}?key={secret}"
        cfg = heartbeat_config(tmp_path, port, target.port, url)
        log = tmp_path / "daemon.log"

        def failures(error: str) -> list[dict[str, object]]:
            return [
                r
                for r in log_records(log)
                if r.get("msg") == "heartbeat failed" and error in str(r.get("error"))
            ]

        with daemon(cfg, log) as proc:
            wait_ready(base, proc, log)
            wait_until(lambda: failures("Timeout"), 10, "a timed-out ping logged")
            # While pings hang, the agent answers at once and keeps running its checks.
            runs = runs_total(base, "alive")
            for _ in range(5):
                started = time.monotonic()
                assert http_get(base + "/healthz", timeout=1.0)[0] == 200
                assert time.monotonic() - started < 0.5
            wait_until(lambda: runs_total(base, "alive") >= runs + 3, 5, "checks keep running")

            receiver.mode = "error"
            wait_until(lambda: failures("HTTP 500"), 5, "a rejected ping logged")
            receiver.stop()
            wait_until(lambda: failures("ClientConnectorError"), 5, "a refused ping logged")
            assert proc.poll() is None, "a failing heartbeat must not crash the agent"
            assert http_get(base + "/healthz")[0] == 200
            receiver.start()

        text = log.read_text()
        assert token not in text and secret not in text, "the heartbeat token leaked into logs"
        warned = failures("")
        assert warned and {r["level"] for r in warned} == {"warning"}
        assert {r["url"] for r in warned} == {f"http://127.0.0.1:{receiver.port}"}


PEER = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
  peers: ["http://127.0.0.1:{peer}"]
channels:
  hook: {{type: webhook, url: "{hook}", default: true}}
checks: []
"""


def test_peers_watch_each_other_and_a_silent_peer_is_an_incident(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    series_a = f'vaktpost_peer_up{{peer="{base_b}"}}'  # on A, about B
    series_b = f'vaktpost_peer_up{{peer="{base_a}"}}'
    name_b = f"peer-127.0.0.1-{port_b}"

    def peer_up(base: str, series: str) -> float | None:
        return metric_value(http_get(base + "/metrics")[1], series)

    with ThreadedReceiver() as hook_a, ThreadedReceiver() as hook_b:
        pairs = (("a", port_a, port_b, hook_a), ("b", port_b, port_a, hook_b))
        for name, port, peer, hook in pairs:
            (tmp_path / f"{name}.yaml").write_text(
                PEER.format(name=name, port=port, peer=peer, state=tmp_path / name, hook=hook.url)
            )
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        with daemon(tmp_path / "a.yaml", log_a) as a:
            # A listens before B starts: B's first probes would otherwise meet a port
            # nobody holds yet and rightly count two failures (seen once in CI).
            wait_ready(base_a, a, log_a)
            with daemon(tmp_path / "b.yaml", log_b) as b:
                wait_ready(base_b, b, log_b)
                wait_until(lambda: peer_up(base_a, series_a) == 1.0, 10, "A sees B up")
                wait_until(lambda: peer_up(base_b, series_b) == 1.0, 10, "B sees A up")
            assert b.returncode == 0
            wait_until(lambda: peer_up(base_a, series_a) == 0.0, 10, "A sees B down")
            firing = wait_until(
                lambda: [r for r in hook_a.receiver.received if r["status"] == "firing"],
                10,
                "the silent peer notified",
            )
            assert firing[0]["system"] == name_b and firing[0]["department"] is None
            assert firing[0]["dedup_key"].startswith(f"a/-/{name_b}/")
            assert "no answer" in firing[0]["checks"][0]["message"]
            incident_id = firing[0]["incident_id"]

            with daemon(tmp_path / "b.yaml", log_b) as b:
                wait_ready(base_b, b, log_b)
                wait_until(lambda: peer_up(base_a, series_a) == 1.0, 10, "A sees B again")
                resolved = wait_until(
                    lambda: [r for r in hook_a.receiver.received if r["status"] == "resolved"],
                    10,
                    "the peer's incident resolved",
                )
                assert resolved[0]["dedup_key"] == f"a/-/{name_b}/{incident_id}/resolved"
                assert http_get(base_a + "/api/v1/incidents?state=open")[1].count('"id"') == 0
            # B never saw A silent: nothing was sent from B.
            assert hook_b.receiver.received == []


async def test_heartbeat_is_withheld_while_the_scheduler_is_unhealthy() -> None:
    import asyncio

    from aiohttp import web

    from alerting.selfwatch import heartbeat_forever

    pings: list[float] = []

    async def ping(_request: web.Request) -> web.Response:
        pings.append(time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    healthy = False
    task = asyncio.create_task(
        heartbeat_forever(f"http://127.0.0.1:{port}/ping", 0.05, 1.0, lambda: healthy)
    )
    try:
        # Hold a stuck scheduler for a few heartbeat intervals: nothing may go out.
        await asyncio.sleep(0.3)
        assert pings == []
        healthy = True
        await async_wait_until(lambda: len(pings) >= 2, 5, "two pings once healthy")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
