"""The alertmanager channel against a real Alertmanager (Debian prometheus-alertmanager):
an alert and its resolution arrive at its webhook receiver; two agents alerting the
same system into an HA pair give one notification."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerting.channels.alertmanager import AlertmanagerConfig
from alerting.channels.registry import build_channel
from alerting.engine import IncidentEngine
from tests.alerting_fixtures import ThreadedReceiver, config_from
from tests.helpers import CI, free_port, wait_until

BINARY = shutil.which("prometheus-alertmanager")

AM_CONFIG = """
route:
  receiver: hook
  group_by: [department, system]
  group_wait: {group_wait}
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""

AGENT = """
agent: {{name: {name}, language: en}}
channels:
  am: {{type: alertmanager, urls: [{urls}]}}
checks:
  - {{name: treserva-web, type: tcp, host: 127.0.0.1, port: 1}}
departments:
  - id: social
    systems:
      - {{id: case, checks: [treserva-web], rto: 2h, fallback: "Paper forms, binder B"}}
    escalation: [{{after: 0m, notify: [am]}}]
"""


@pytest.fixture(scope="module")
def binary() -> str:
    if BINARY is None:
        if CI:
            pytest.fail("prometheus-alertmanager is not installed (CI=true)")
        pytest.skip("prometheus-alertmanager is not installed")
    return BINARY


def start_am(
    binary: str, tmp: Path, url: str, cluster: list[str], group_wait: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "am.yml").write_text(AM_CONFIG.format(url=url, group_wait=group_wait))
    args = [
        binary,
        f"--config.file={tmp / 'am.yml'}",
        f"--storage.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *cluster,
    ]
    log = (tmp / "am.log").open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    log.close()

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            assert proc.poll() is None, (tmp / "am.log").read_text()
            return False

    wait_until(ready, 20, "alertmanager ready", every=0.1)
    return proc, port


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def payloads(name: str, urls: str) -> tuple[IncidentEngine, dict[str, Any], dict[str, Any]]:
    engine = IncidentEngine(config_from(AGENT.format(name=name, urls=urls)))
    now = time.time()
    out = engine.observe("treserva-web", "critical", "refused", now)
    out.merge(engine.observe("treserva-web", "critical", "refused", now))
    firing = out.notifications[0].payload
    resolved = engine.observe("treserva-web", "ok", "fine", now + 1).notifications[0].payload
    return engine, firing, resolved


def notifications(receiver: ThreadedReceiver) -> list[dict[str, Any]]:
    return list(receiver.receiver.received)


def test_alert_then_resolution(binary: str, tmp_path: Path, procs: list[Any]) -> None:
    with ThreadedReceiver() as receiver:
        proc, port = start_am(binary, tmp_path, receiver.url, ["--cluster.listen-address="], "1s")
        procs.append(proc)
        _, firing, resolved = payloads("srv-a", f"http://127.0.0.1:{port}")
        channel = build_channel(
            "am", AlertmanagerConfig(type="alertmanager", urls=(f"http://127.0.0.1:{port}",))
        )

        async def send(payload: dict[str, Any]) -> None:
            try:
                await channel.send(payload)
            finally:
                await channel.close()

        asyncio.run(send(firing))
        wait_until(lambda: notifications(receiver), 15, "the firing notification")
        (note,) = notifications(receiver)
        assert note["status"] == "firing"
        (alert,) = note["alerts"]
        assert alert["labels"] == {
            "alertname": "VaktpostIncident",
            "department": "social",
            "system": "case",
            "severity": "critical",
            "agent": "srv-a",
        }
        assert alert["annotations"]["fallback"] == "Paper forms, binder B"
        asyncio.run(send(resolved))
        wait_until(
            lambda: any(n["status"] == "resolved" for n in notifications(receiver)),
            15,
            "the resolution",
        )
        final = notifications(receiver)[-1]
        assert final["alerts"][0]["status"] == "resolved"


def test_ha_pair_gives_one_notification(binary: str, tmp_path: Path, procs: list[Any]) -> None:
    with ThreadedReceiver() as receiver:
        c1, c2 = free_port(), free_port()
        tuning = [
            "--cluster.peer-timeout=2s",
            "--cluster.gossip-interval=50ms",
            "--cluster.pushpull-interval=1s",
            "--cluster.settle-timeout=2s",
        ]
        am1, p1 = start_am(
            binary,
            tmp_path / "a",
            receiver.url,
            [f"--cluster.listen-address=127.0.0.1:{c1}", f"--cluster.peer=127.0.0.1:{c2}", *tuning],
            "2s",
        )
        procs.append(am1)
        am2, p2 = start_am(
            binary,
            tmp_path / "b",
            receiver.url,
            [f"--cluster.listen-address=127.0.0.1:{c2}", f"--cluster.peer=127.0.0.1:{c1}", *tuning],
            "2s",
        )
        procs.append(am2)
        urls = f"http://127.0.0.1:{p1}, http://127.0.0.1:{p2}"
        _, firing_a, _ = payloads("srv-a", urls)
        _, firing_b, _ = payloads("srv-b", urls)
        cfg = AlertmanagerConfig(
            type="alertmanager", urls=(f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}")
        )

        async def both() -> None:
            a, b = build_channel("am", cfg), build_channel("am", cfg)
            try:
                await asyncio.gather(a.send(firing_a), b.send(firing_b))
            finally:
                await a.close()
                await b.close()

        time.sleep(1.0)  # hold: let the pair's gossip settle before alerting
        asyncio.run(both())
        wait_until(lambda: notifications(receiver), 20, "a notification from the pair")
        # Past the second node's peer timeout (2 s per position): still only one.
        deadline = time.monotonic() + 6
        wait_until(lambda: time.monotonic() > deadline, 8, "the dedup window to pass")
        received = notifications(receiver)
        assert len(received) == 1, [n["alerts"] for n in received]
        agents = sorted(a["labels"]["agent"] for a in received[0]["alerts"])
        assert agents == ["srv-a", "srv-b"], "both agents' alerts in one group notification"


REPOST = """
agent:
  name: rp
  default_escalation: [{{after: 0s, notify: [am]}}]
channels:
  am: {{type: alertmanager, urls: ["{url}"], repost_interval: 60s}}
checks:
{checks}
"""


def test_reposts_are_notifications_through_the_outbox() -> None:
    """Re-posting is a capability of the alertmanager channel config: the engine emits
    a `refresh` notification every repost_interval while an incident is open (acked
    or not), which the outbox delivers like any other (retry, record, fallback);
    nothing is re-posted once it resolves, and nothing is kept for it."""
    from tests.alerting_fixtures import Timeline

    names = [f"c{i}" for i in range(5)]
    checks = "\n".join(
        f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}"
        for n in names
    )
    config = config_from(REPOST.format(url="http://127.0.0.1:9/", checks=checks))
    start = 1_700_000_000.0
    tl = Timeline(IncidentEngine(config), start)
    for name in names:
        tl.result(name, "critical")
    tl.advance_to(59)
    assert tl.sent("refresh") == [], "the first post was just sent"
    tl.advance_to(61)
    refreshes = [n for n in tl.notifications if n.kind == "refresh"]
    assert len(refreshes) == 5 and {n.channel for n in refreshes} == {"am"}
    assert all(n.payload["status"] == "firing" for n in refreshes)
    assert len({n.dedup_key for n in refreshes}) == 5
    first = next(iter(tl.engine.state.incidents.values()))
    tl.take(tl.engine.acknowledge(first.id, "anna", "", tl.now))
    tl.advance_to(122)
    acked = [n for n in tl.notifications if n.kind == "refresh" and n.incident_id == first.id]
    assert acked[-1].payload["status"] == "acknowledged", "acknowledged ones keep being posted"
    for name in names:
        tl.result(name, "ok")
    before = len(tl.sent("refresh"))
    tl.advance_to(600)
    assert len(tl.sent("refresh")) == before, "nothing is re-posted after recovery"
    assert tl.engine.state.incidents == {}
