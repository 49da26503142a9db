"""An agent whose fleet store is down at start exits 1 (its supervisor retries), and
its outage notice goes out once through the channels it can deliver itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.alerting_fixtures import ThreadedReceiver
from tests.helpers import free_port, vaktpost_cmd

CONFIG = """
agent:
  name: srv-a
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "postgresql://vaktpost@127.0.0.1:{dead}/vaktpost?connect_timeout=1"
channels:
  hook: {{type: webhook, url: "{hook}", default: true}}
checks:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {dead}}}
"""


def test_a_start_with_the_store_down_tells_once_and_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    with ThreadedReceiver() as receiver:
        cfg.write_text(
            CONFIG.format(
                port=free_port(), state=tmp_path / "state", dead=free_port(), hook=receiver.url
            )
        )
        for _ in range(2):  # the supervisor's retry: the notice is not sent again
            done = subprocess.run(
                vaktpost_cmd("run", "-c", str(cfg)), capture_output=True, text=True, timeout=90
            )
            assert done.returncode == 1, done.stderr
            assert "cannot start" in done.stderr and "Traceback" not in done.stderr
        bodies = list(receiver.receiver.received)
    assert len(bodies) == 1, bodies
    assert bodies[0]["store_outage"] == "unreachable", bodies[0]
