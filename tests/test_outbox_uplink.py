"""Uplink down (a `link` check against closed loopback ports): the daemon notifies
through the `requires_internet: false` fallback; once the link is back, the
internet channel is used again."""

from __future__ import annotations

from pathlib import Path

from tests.alerting_fixtures import TcpTarget, ThreadedReceiver, daemon, free_port, wait_for

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


def test_uplink_down_uses_fallback_then_internet_again(tmp_path: Path) -> None:
    link, app = TcpTarget(), TcpTarget()
    with ThreadedReceiver() as cloud, ThreadedReceiver() as lan:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            CONFIG.format(
                port=free_port(),
                state=tmp_path / "s",
                cloud=cloud.url,
                lan=lan.url,
                link1=link.port,
                link2=free_port(),
                app=app.port,
            )
        )
        with daemon(cfg, tmp_path / "daemon.log"):
            wait_for(lambda: "up/water/scada/1/0" in lan.dedup_keys(), 15, "fallback delivery")
            assert cloud.dedup_keys() == [], "the internet channel was skipped"
            link.open()
            app.open()
            wait_for(
                lambda: "up/water/scada/1/resolved" in cloud.dedup_keys(),
                15,
                "resolved via the internet channel once the uplink is back",
            )
        assert lan.dedup_keys() == ["up/water/scada/1/0"]
    link.close()
    app.close()
