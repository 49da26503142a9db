"""Uplink down (a `link` check against closed loopback ports): the daemon notifies
through the `requires_internet: false` fallback; once the link is back, the
internet channel is used again."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.alerting_fixtures import TcpTarget, ThreadedReceiver, http_get
from tests.helpers import daemon, free_port, wait_until

CONFIG = """
agent:
  name: up
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  cloud: {{type: webhook, url: "{cloud}", requires_internet: true, fallback: [lan]}}
  lan: {{type: webhook, url: "{lan}"}}
checks:
  - name: uplink
    type: link
    targets: ["tcp://127.0.0.1:{link1}", "tcp://127.0.0.1:{link2}"]
    quorum: 1
  - {{name: app, type: tcp, host: 127.0.0.1, port: {app}}}
departments:
  - id: water
    systems: [{{id: scada, checks: [app]}}]
    escalation: [{{after: 0s, notify: [cloud]}}]
"""


def check_status(port: int, name: str) -> str | None:
    status, body = http_get(f"http://127.0.0.1:{port}/api/v1/checks")
    if status != 200:
        return None
    return next((c["status"] for c in json.loads(body)["checks"] if c["name"] == name), None)


def test_uplink_down_uses_fallback_then_internet_again(tmp_path: Path) -> None:
    link, dead, app = TcpTarget(), TcpTarget(), TcpTarget()
    port = free_port()
    with ThreadedReceiver() as cloud, ThreadedReceiver() as lan:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            CONFIG.format(
                port=port,
                state=tmp_path / "s",
                cloud=cloud.url,
                lan=lan.url,
                link1=link.port,
                link2=dead.port,
                app=app.port,
            )
        )
        app.open()
        with daemon(cfg, tmp_path / "daemon.log"):
            # The app fails only once the agent knows the uplink is down: before
            # that, right after start, the internet channel is rightly tried first.
            wait_until(lambda: check_status(port, "uplink") == "critical", 10, "uplink seen down")
            wait_until(lambda: check_status(port, "app") == "ok", 10, "app seen up")
            app.close()
            # The dead uplink is an incident of its own (no channels): ids are a race
            # between the two. Find the app's id.
            (first,) = wait_until(
                lambda: [k for k in lan.dedup_keys() if re.fullmatch(r"up/water/scada/\d+/0", k)],
                15,
                "fallback delivery",
            )
            incident = first.split("/")[3]
            assert cloud.dedup_keys() == [], "the internet channel was skipped"
            link.open()
            # The app must recover after the agent saw the uplink back: a resolved
            # notice queued while the uplink is still down rightly goes to `lan`.
            wait_until(lambda: check_status(port, "uplink") == "ok", 10, "uplink seen up")
            app.open()
            wait_until(
                lambda: f"up/water/scada/{incident}/resolved" in cloud.dedup_keys(),
                15,
                "resolved via the internet channel once the uplink is back",
            )
        assert lan.dedup_keys() == [first]
    link.close()
    app.close()
