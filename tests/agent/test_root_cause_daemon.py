"""Root cause end to end: a real daemon, real tcp probes, a real webhook receiver.

Issue 8, seen 1 and 2: at start-up with a dead uplink and at the instant it dies,
dependents stood as their own root causes (16 of 20 paged separately), and the
systems hit by the outage were reported up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.alerting_fixtures import TcpTarget, ThreadedReceiver, http_get, metric_value
from tests.helpers import daemon, free_port, wait_until

N = 20


def write_config(tmp_path: Path, uplink: TcpTarget, apps: list[TcpTarget], hook: str) -> Path:
    port = free_port()
    checks = [
        f"  - {{name: uplink, type: tcp, host: 127.0.0.1, port: {uplink.port},"
        " interval: 1s, timeout: 1s, failures_before_alert: 1}",
    ] + [
        f"  - {{name: app{i}, type: tcp, host: 127.0.0.1, port: {t.port}, interval: 1s,"
        " timeout: 1s, failures_before_alert: 1, depends_on: [uplink]}"
        for i, t in enumerate(apps)
    ]
    systems = "\n".join(
        f"      - {{id: s{i}, checks: [app{i}], rto: 15m, fallback: 'Paper {i}'}}"
        for i in range(len(apps))
    )
    cfg = tmp_path / "vaktpost.yaml"
    cfg.write_text(
        f"""
agent:
  name: e2e
  listen: 127.0.0.1:{port}
  state_dir: {tmp_path / "state"}
  language: en
  group_wait: 2s
channels:
  hook: {{type: webhook, url: "{hook}", default: true}}
checks:
{chr(10).join(checks)}
departments:
  - id: social
    systems:
{systems}
    escalation: [{{after: 0m, notify: [hook]}}]
"""
    )
    return cfg


def api(cfg: Path, path: str) -> Any:
    port = cfg.read_text().split("listen: 127.0.0.1:")[1].split()[0]
    status, body = http_get(f"http://127.0.0.1:{port}{path}")
    return json.loads(body) if status == 200 else None


def settled(cfg: Path, receiver: ThreadedReceiver, incidents: int) -> bool:
    """Every incident open and the outbox empty: nothing more is coming."""
    doc = api(cfg, "/api/v1/incidents?state=open")
    if doc is None or len(doc["incidents"]) != incidents:
        return False
    metrics = metrics_text(cfg)
    pending = metric_value(metrics, 'vaktpost_outbox_pending{channel="hook"}')
    delivered = metric_value(
        metrics, 'vaktpost_notifications_total{channel="hook",outcome="delivered"}'
    )
    return pending == 0 and bool(delivered)


def metrics_text(cfg: Path) -> str:
    port = cfg.read_text().split("listen: 127.0.0.1:")[1].split()[0]
    return http_get(f"http://127.0.0.1:{port}/metrics")[1]


def assert_one_message(receiver: ThreadedReceiver) -> dict[str, Any]:
    received = list(receiver.receiver.received)
    firing = [r for r in received if r["status"] == "firing"]
    assert len(firing) == 1, [r["dedup_key"] for r in received]
    (message,) = firing
    assert message["system"] == "uplink", "led by the root cause"
    assert len(message["grouped"]) == N + 1
    assert {e["system"] for e in message["impacted"]} == {f"s{i}" for i in range(N)}
    assert all(e["rto_remaining_seconds"] > 0 for e in message["impacted"])
    assert "Paper 3" in message["text"]
    return message


def assert_impacted_are_down(cfg: Path) -> None:
    metrics = metrics_text(cfg)
    for i in range(N):
        series = f'vaktpost_system_up{{department="social",system="s{i}"}}'
        assert metric_value(metrics, series) == 0
    assert metric_value(metrics, 'vaktpost_department_state{department="social"}') == 1
    incidents = api(cfg, "/api/v1/incidents?state=open")["incidents"]
    root = next(i for i in incidents if i["system"] == "uplink")
    caused = [i for i in incidents if i["system"] != "uplink"]
    assert all(i["caused_by"] == root["id"] for i in caused)


def test_start_up_with_a_dead_uplink_sends_one_message(tmp_path: Path) -> None:
    uplink, apps = TcpTarget(), [TcpTarget() for _ in range(N)]  # all closed: refused
    with ThreadedReceiver() as receiver:
        cfg = write_config(tmp_path, uplink, apps, receiver.url)
        with daemon(cfg, tmp_path / "log"):
            wait_until(lambda: settled(cfg, receiver, N + 1), 30, "21 incidents, outbox empty")
            assert_one_message(receiver)
            assert_impacted_are_down(cfg)


def test_live_outage_sends_one_message(tmp_path: Path) -> None:
    uplink, apps = TcpTarget(), [TcpTarget() for _ in range(N)]
    for t in [uplink, *apps]:
        t.open()
    with ThreadedReceiver() as receiver:
        cfg = write_config(tmp_path, uplink, apps, receiver.url)
        with daemon(cfg, tmp_path / "log"):

            def all_ok() -> bool:
                doc = api(cfg, "/api/v1/checks")
                return doc is not None and all(c["status"] == "ok" for c in doc["checks"])

            wait_until(all_ok, 30, "every check ok")
            for t in [uplink, *apps]:
                t.close()
            wait_until(lambda: settled(cfg, receiver, N + 1), 30, "21 incidents, outbox empty")
            assert_one_message(receiver)
            assert_impacted_are_down(cfg)


def test_kill_9_during_a_grouped_send_sends_the_whole_group_again(tmp_path: Path) -> None:
    """At-least-once for groups: the kill falls between the send and its record."""
    import asyncio
    import signal
    import threading

    from aiohttp import web

    uplink, apps = TcpTarget(), [TcpTarget() for _ in range(5)]
    receiver = ThreadedReceiver()
    original = receiver.receiver._handle
    seen: list[dict[str, Any]] = []
    released = threading.Event()  # set from the test's thread, not the receiver's loop

    async def first_hangs(request: web.Request) -> web.Response:
        if not released.is_set():
            seen.append(await request.json())
            # No answer: the daemon is killed meanwhile.
            await asyncio.to_thread(released.wait, 60)
            return web.Response(status=503)
        return await original(request)

    receiver.receiver._handle = first_hangs  # type: ignore[method-assign]
    with receiver:
        cfg = write_config(tmp_path, uplink, apps, receiver.url)
        try:
            with daemon(cfg, tmp_path / "log") as proc:
                wait_until(lambda: seen, 30, "the grouped send to arrive")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        finally:
            released.set()
        (first,) = seen
        assert len(first["grouped"]) == 6
        with daemon(cfg, tmp_path / "log2"):
            wait_until(lambda: settled(cfg, receiver, 6), 30, "the group delivered after restart")
        again = [r for r in receiver.receiver.received if r["status"] == "firing"]
        assert len(again) == 1, "one message, not six"
        assert again[0]["grouped"] == first["grouped"], "the same dedup keys"
