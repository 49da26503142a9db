"""A SIGHUP storm with a slow receiver (issue 9, seen 10).

Each reload used to cancel the sends in flight and send them again: 50 SIGHUPs
with a receiver answering in 0.5 s POSTed one dedup key 47 times. Unchanged
channels now keep their lane, and a changed one finishes its send first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.alerting_fixtures import (
    ThreadedReceiver,
    daemon,
    free_port,
    http_get,
    log_records,
    wait_for,
)


def test_fifty_sighups_deliver_each_key_at_most_twice(tmp_path: Path) -> None:
    # Patched before start: the receiver's route takes the handler when it starts.
    receiver = ThreadedReceiver()
    original = receiver.receiver._handle

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return await original(request)

    receiver.receiver._handle = slow  # type: ignore[method-assign]
    with receiver:
        port = free_port()
        cfg = tmp_path / "storm.yaml"
        cfg.write_text(
            f"""
agent:
  listen: 127.0.0.1:{port}
  state_dir: {tmp_path / "state"}
  group_wait: 0s
channels:
  hook: {{type: webhook, url: "{receiver.url}", timeout: 5s}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, interval: 1s, failures_before_alert: 1}}
departments:
  - id: d
    systems: [{{id: s, checks: [web]}}]
    repeat: 1s
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: 2s, notify: [hook]}}
      - {{after: 4s, notify: [hook]}}
"""
        )
        with daemon(cfg, tmp_path / "log") as proc:
            wait_for(
                lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the agent"
            )
            wait_for(lambda: receiver.dedup_keys(), 20, "the first notification")
            for _ in range(50):
                os.kill(proc.pid, signal.SIGHUP)
                time.sleep(0.05)  # pacing the storm, not waiting for state
            wait_for(
                lambda: (
                    sum(1 for r in log_records(tmp_path / "log") if r["msg"] == "config reloaded")
                    >= 50
                ),
                30,
                "50 reloads",
            )
            wait_for(lambda: any(k.endswith("/2") for k in receiver.dedup_keys()), 30, "step 2")
        counts = Counter(receiver.dedup_keys())
        assert counts, "something was delivered"
        worst = counts.most_common(1)[0]
        assert worst[1] <= 2, f"{worst[0]} was delivered {worst[1]} times"
