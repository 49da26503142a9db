"""The console shows who is on duty and the report deadlines of significant incidents
(issue 13: "the status page shows who is on duty now and next"; issue 14: "the
security function can see every significant incident's report deadlines")."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.alerting_fixtures import TcpTarget
from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  name: con
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 1}}
  compliance_notify: [compliance]
channels:
  oncall: {{type: log, default: true}}
  compliance: {{type: log}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [oncall]}}
  bertil: {{name: Bertil Ek, phone: "+46707654321", via: [oncall]}}
rotations:
  tib: {{members: [anna, bertil], handoff: "MON 08:00", every: 1w}}
checks:
  - {{name: journal, type: tcp, host: 127.0.0.1, port: {target}}}
departments:
  - id: social
    systems: [{{id: case, checks: [journal]}}]
    escalation: [{{after: 0s, notify: [oncall]}}]
"""


def call(agent: AgentProcess, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(agent.base + path, data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return json.loads(raw) if path.startswith("/api") else raw.decode()


def test_console_shows_on_duty_and_significant_deadlines(tmp_path: Path) -> None:
    port, target = free_port(), TcpTarget()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(port=port, state=tmp_path / "s", target=target.port))
    with AgentProcess(cfg, tmp_path / "a.log", port=port) as agent:
        agent.wait_ready()
        page = call(agent, "GET", "/")
        assert "Anna Lind" in page or "Bertil Ek" in page, "who is on duty"
        assert "Significant incidents" not in page

        def incident() -> int | None:
            found = call(agent, "GET", "/api/v1/incidents?state=open")["incidents"]
            return found[0]["id"] if found else None

        iid = wait_until(incident, 15, "an open incident")
        call(agent, "POST", f"/api/v1/incidents/{iid}/significant", {"comment": "x"})
        page = call(agent, "GET", "/")
        assert "Significant incidents: reporting" in page
        assert f'href="/incidents/{iid}?lang=en">#{iid}</a>' in page
        assert "Early warning due" in page and "Final report due" in page
        detail = call(agent, "GET", f"/incidents/{iid}?lang=en")
        assert '<li data-stage="early_warning">Early warning: due' in detail
        assert '<li data-stage="final_report">Final report: due' in detail
