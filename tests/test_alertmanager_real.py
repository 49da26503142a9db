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


async def test_repost_bookkeeping_stays_bounded(tmp_path: Path) -> None:
    """No Alertmanager needed: a recording receiver stands in for /api/v2/alerts.
    Open incidents are re-posted every repost_interval; resolved ones are forgotten."""
    import json

    from agent.state.sqlite import Store
    from alerting.service import AlertingService
    from tests.alerting_fixtures import Receiver

    receiver = Receiver()
    await receiver.start()
    names = [f"c{i}" for i in range(5)]
    checks = "\n".join(
        f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}"
        for n in names
    )
    config = config_from(REPOST.format(url=f"http://127.0.0.1:{receiver.port}", checks=checks))
    store = Store(tmp_path)
    await store.open()
    service = AlertingService(config, store)
    service.engine = IncidentEngine(config)
    service.channels = {"am": build_channel("am", config.channels["am"])}
    now = 1_700_000_000.0
    try:
        for _ in range(40):  # 200 incidents, at most 5 open at once
            for name in names:
                service.observe(name, "critical", "down", now)
            await service.repost_due(now)  # the outbox just sent them: no re-post yet
            before = len(receiver.received)
            now += 61
            await service.repost_due(now)
            reposted = [json.loads(body)[0] for body in receiver.bodies[before:]]
            assert len(reposted) == 5, "every open incident is re-posted after the interval"
            assert all(a["annotations"]["status"] == "firing" for a in reposted)
            assert service.repost_entries == 5
            for name in names:
                service.observe(name, "ok", "fine", now)
            await service.repost_due(now)
            assert service.repost_entries == 0, "resolved incidents must be forgotten"
        assert service.engine.state.next_incident_id == 201
    finally:
        await service.channels["am"].close()
        await store.close()
        await receiver.stop()
