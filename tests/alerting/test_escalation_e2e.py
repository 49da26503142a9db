"""The daemon end to end, as a subprocess: a real outage drives real notifications."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp

from tests.alerting_fixtures import Receiver, TcpTarget
from tests.helpers import async_wait_until, daemon, free_port

CONFIG = """
agent:
  name: e2e
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  defaults: {{interval: 0.3s, timeout: 1s, failures_before_alert: 2}}
channels:
  hook: {{type: webhook, url: "{hook}", hmac_secret_file: {secret}, concurrency: 1}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {target}}}
departments:
  - id: dept
    name: Department
    systems:
      - {{id: app, name: The App, checks: [app], rto: 5s, mtpd: 10s, fallback: Use paper}}
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: 2s, notify: [hook]}}
      - {{after: rto, notify: [hook], message: RTO breached}}
"""


def write_config(tmp: Path, receiver: Receiver, target: TcpTarget) -> tuple[Path, int]:
    port = free_port()
    secret = tmp / "hook.key"
    secret.write_text("s3cret-key\n")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port, state=tmp / "state", hook=receiver.url, secret=secret, target=target.port
        )
    )
    return cfg, port


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()


async def ready(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(base + "/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def test_outage_escalates_ack_stops_recovery_resolves(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    target = TcpTarget()
    target.open()
    cfg, port = write_config(tmp_path, receiver, target)
    base = f"http://127.0.0.1:{port}"
    arrivals: dict[str, float] = {}

    def arrived(suffix: str) -> bool:
        for body in receiver.received:
            if body["dedup_key"].endswith(suffix):
                arrivals.setdefault(suffix, time.monotonic())
                return True
        return False

    with daemon(cfg, tmp_path / "daemon.log") as proc:
        try:

            def alive_and_ready() -> Awaitable[bool]:
                assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
                return ready(base)

            await async_wait_until(alive_and_ready, 15, "the daemon to be ready")
            target.close()
            await async_wait_until(lambda: arrived("/1/0"), 8, "step 0")
            await async_wait_until(lambda: arrived("/1/1"), 5, "step 1")
            gap = arrivals["/1/1"] - arrivals["/1/0"]
            assert 1.4 < gap < 3.0, f"step 1 came {gap:.2f}s after step 0, want ~2s"

            first = receiver.received[0]
            assert first["dedup_key"] == "e2e/dept/app/1/0"
            assert first["status"] == "firing" and first["fallback"] == "Use paper"
            assert first["rto_seconds"] == 5 and first["checks"][0]["name"] == "app"
            mac = hmac.new(b"s3cret-key", receiver.bodies[0], hashlib.sha256).hexdigest()
            assert receiver.headers[0]["X-Vaktpost-Signature"] == f"sha256={mac}"

            ack_url = f"{base}/api/v1/incidents/1/ack"
            async with aiohttp.ClientSession() as s, s.post(ack_url, json={"by": "anna"}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["acknowledged_by"] == "anna"
            await async_wait_until(lambda: arrived("/1/ack-1"), 5, "acknowledged notice")
            # The RTO step (5s) must not come while acknowledged: wait past it.
            await async_wait_until(
                lambda: time.monotonic() > arrivals["/1/0"] + 6.5, 8, "past the RTO step"
            )
            assert not arrived("/1/2"), receiver.dedup_keys()

            open_now = await get_json(f"{base}/api/v1/incidents?state=open")
            (incident,) = open_now["incidents"]
            assert incident["status"] == "acknowledged" and incident["steps_taken"] == [0, 1]

            target.open()
            await async_wait_until(lambda: arrived("/1/resolved"), 8, "resolved notice")
            assert [k for k in receiver.dedup_keys() if k.endswith("/1/1")] == ["e2e/dept/app/1/1"]
            resolved = await get_json(f"{base}/api/v1/incidents?state=resolved")
            assert resolved["incidents"][0]["status"] == "resolved"
            async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
                text = await r.text()
            assert 'vaktpost_system_up{department="dept",system="app"} 1.0' in text
            delivered = 'vaktpost_notifications_total{channel="hook",outcome="delivered"} 4.0'
            assert delivered in text, "step 0, step 1, ack notice, resolved"
            assert 'vaktpost_incidents_open{department="dept"} 0.0' in text
            async with aiohttp.ClientSession() as s, s.get(base + "/") as r:
                assert "No open incidents." in await r.text()
        finally:
            target.close()
            await receiver.stop()
    assert proc.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]
