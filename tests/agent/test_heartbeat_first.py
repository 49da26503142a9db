"""The first heartbeat goes out right after start, not one interval later.

The heartbeat task starts with the alerting component, a moment before the
check scheduler: it used to find the scheduler "not running", log that falsely
and skip the first ping, so a receiver with a grace shorter than the interval
saw a fresh agent as dead.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.alerting_fixtures import PingServer, log_records
from tests.helpers import daemon, free_port, wait_until

CONFIG = """
agent:
  name: hb-first
  listen: 127.0.0.1:{port}
  state_dir: {state}
  heartbeat: {{url: "http://127.0.0.1:{receiver}/ping/{token}", interval: 1h}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: alive, type: tcp, host: 127.0.0.1, port: {receiver}, interval: 1h}}
"""


def test_first_ping_arrives_at_start_without_a_false_withheld_log(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    with PingServer() as receiver:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            CONFIG.format(
                port=free_port(), state=tmp_path / "s", receiver=receiver.port, token=token
            )
        )
        log = tmp_path / "daemon.log"
        started = time.monotonic()
        with daemon(cfg, log) as proc:
            # With a 1 h interval, a skipped first ping means no ping for an hour.
            wait_until(lambda: receiver.paths(f"/ping/{token}"), 15, "the first heartbeat")
            assert proc.poll() is None
            first = next(t for t, p in list(receiver.requests) if p == f"/ping/{token}")
            assert first - started < 15
            wait_until(
                lambda: any(r.get("msg") == "vaktpost started" for r in log_records(log)),
                10,
                "the start log line",
            )
        messages = [str(r.get("msg", "")) for r in log_records(log)]
        assert not [m for m in messages if "heartbeat withheld" in m], messages
        assert len(receiver.paths(f"/ping/{token}")) == 1
