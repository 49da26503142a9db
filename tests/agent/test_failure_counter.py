"""One failure counter: /metrics shows failures in a row as the incident engine counts
them for failures_before_alert, so an unreachable check (down for the people who use
it) counts there as it does for its incident, instead of a second count that reset."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 3}}
checks:
  - {{name: switch, type: tcp, host: 127.0.0.1, port: {closed}}}
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}, depends_on: [switch]}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
"""


def sample(agent: AgentProcess, line_start: str) -> float | None:
    for line in agent.get("/metrics")[1].decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def test_an_unreachable_check_counts_its_failures_like_its_incident(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(port=port, state=tmp_path / "state", closed=free_port()))
    with AgentProcess(cfg, port=port) as agent:
        agent.wait_ready()
        app = 'vaktpost_check_consecutive_failures{check="app"}'
        switch = 'vaktpost_check_consecutive_failures{check="switch"}'
        wait_until(lambda: sample(agent, app) == 3, timeout=15, what="app counted to 3")
        assert sample(agent, switch) == 3
        assert sample(agent, 'vaktpost_check_status{check="app",type="tcp"}') == 4  # unreachable
        # The same count opened the incident (failures_before_alert reached).
        status, body = agent.get("/api/v1/incidents?state=open")
        assert status == 200 and b'"system": "app"' in body.replace(b'":"', b'": "'), body
