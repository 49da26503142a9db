"""A receiver that answers 503 for a minute mid-escalation (issue 9, the fault suite).

Nothing is lost, nothing is sent twice, everything arrives in the order it was
queued, and the queue drains soon after the receiver returns (backoff is capped
at 30 s; before, a 135 s outage took 92-105 s to drain).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.alerting_fixtures import ThreadedReceiver, daemon, free_port, http_get, wait_for

OUTAGE = 60.0


def test_a_minute_of_503_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with ThreadedReceiver() as receiver:
        port = free_port()
        cfg = tmp_path / "outage.yaml"
        cfg.write_text(
            f"""
agent:
  listen: 127.0.0.1:{port}
  state_dir: {tmp_path / "state"}
  group_wait: 0s
channels:
  hook: {{type: webhook, url: "{receiver.url}", timeout: 2s}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, interval: 1s, failures_before_alert: 1}}
departments:
  - id: d
    systems: [{{id: s, checks: [web]}}]
    repeat: 20s
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: 10s, notify: [hook]}}
      - {{after: 30s, notify: [hook]}}
"""
        )
        with daemon(cfg, tmp_path / "log"):
            wait_for(lambda: receiver.dedup_keys(), 30, "the first step")
            receiver.receiver.status = 503
            down_at = time.monotonic()
            wait_for(lambda: time.monotonic() - down_at >= OUTAGE, OUTAGE + 5, "a minute of outage")
            queued_during = [k for k in receiver.dedup_keys()]
            receiver.receiver.status = 200
            up_at = time.monotonic()

            def drained() -> bool:
                status, body = http_get(f"http://127.0.0.1:{port}/metrics")
                return status == 200 and 'vaktpost_outbox_pending{channel="hook"} 0.0' in body

            wait_for(lambda: len(receiver.dedup_keys()) > len(queued_during), 60, "a delivery")
            wait_for(drained, 60, "the queue to drain")
            drain = time.monotonic() - up_at
        keys = receiver.dedup_keys()
        print(f"drained {drain:.1f}s after a {OUTAGE:.0f}s outage")  # docs/reliability.md
        assert len(keys) == len(set(keys)), "no dedup key twice"
        steps = [k.rsplit("/", 1)[-1] for k in keys if "/repeat-" not in k]
        assert steps[:3] == ["0", "1", "2"], "every step, in order"
        assert any("/repeat-" in k for k in keys), "repeats that came due in the outage"
        assert drain < 45.0, f"the queue took {drain:.0f}s to drain"
