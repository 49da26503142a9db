"""Significant incidents on a running agent: an operator marks one, reminders reach the
compliance channel, stages are marked sent, a viewer is refused, the CLI prints the draft."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from agent.cli import main
from tests.alerting_fixtures import TcpTarget
from tests.helpers import AgentProcess, free_port, wait_until

PASSWORD = "correct horse"
CONFIG = """
agent:
  name: sig
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
  web:
    users:
      ops: {{password_hash: "{hashed}", role: operator}}
      viewer: {{password_hash: "{hashed}", role: viewer}}
  # Seconds instead of days, so the reminders arrive during the test; long enough
  # that the 90 % and 100 % points of a stage (0.6 s apart here) never fall into
  # one escalation tick (0.25 s), which sends the later of them alone, by design:
  # with 2 s they were 0.2 s apart and CI once saw five reminders.
  significant: {{early_warning: 6s, notification: 8s, final_report: 1h}}
  compliance_notify: [compliance]
channels:
  oncall: {{type: log, default: true}}
  compliance: {{type: log}}
checks:
  - {{name: journal, type: tcp, host: 127.0.0.1, port: {target}}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - {{id: case, name: Treserva, checks: [journal], rto: 4h, mtpd: 1d,
         fallback: "Paper forms in binder B"}}
    escalation:
      - {{after: 0s, notify: [oncall]}}
"""


def call(
    agent: AgentProcess, method: str, path: str, body: Any = None, user: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(agent.base + path, data, method=method)
    req.add_header("Content-Type", "application/json")
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def compliance_deliveries(agent: AgentProcess, incident: int) -> list[dict[str, Any]]:
    timeline = call(agent, "GET", f"/api/v1/incidents/{incident}")[1]["timeline"]
    return [e for e in timeline if e["kind"] == "delivery" and e["channels"] == ["compliance"]]


def test_operator_marks_significant_reminders_go_out_stages_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    target = TcpTarget()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(port=port, state=tmp_path / "s", hashed=hashed, target=target.port)
    )
    with AgentProcess(cfg, tmp_path / "a.log", port=port) as agent:
        agent.wait_ready()

        def open_incident() -> int | None:
            found = call(agent, "GET", "/api/v1/incidents?state=open")[1]["incidents"]
            return found[0]["id"] if found else None

        incident = wait_until(open_incident, 15, "an open incident")
        assert incident is not None
        mark = f"/api/v1/incidents/{incident}/significant"
        status, body = call(agent, "POST", mark, {}, user="viewer")
        assert status == 403, body
        status, body = call(agent, "POST", "/api/v1/incidents/999/significant", {}, user="ops")
        assert status == 404 and body == {"error": "no incident 999"}
        status, doc = call(agent, "POST", mark, {"comment": "patient data"}, user="ops")
        assert status == 200, doc
        assert doc["marked_by"] == "ops" and doc["reason"] == "patient data"
        assert [s["stage"] for s in doc["stages"]] == [
            "early_warning",
            "notification",
            "final_report",
        ]

        # 50 %, 90 % and the deadline of both short stages: six reminders, each delivered.
        # Waited for whole: the timeline shows a queued reminder before it is sent.
        def delivered() -> list[str] | None:
            outcomes = [e["outcome"] for e in compliance_deliveries(agent, incident)]
            return outcomes if len(outcomes) >= 6 and set(outcomes) == {"delivered"} else None

        wait_until(delivered, 30, "six reminders, each delivered")
        metrics = agent.get("/metrics")[1].decode()
        assert (
            f'vaktpost_significant_overdue{{incident="{incident}",stage="early_warning"}} 1.0'
            in metrics
        )

        reported = f"/api/v1/incidents/{incident}/reported"
        status, body = call(agent, "POST", reported, {"stage": "early_warning"}, user="viewer")
        assert status == 403
        status, body = call(agent, "POST", reported, {"stage": "sometime"}, user="ops")
        assert status == 400 and "early_warning" in body["error"]
        monkeypatch.setenv("VAKTPOST_PASSWORD", PASSWORD)
        base = ["--url", agent.base, "--user", "ops"]
        assert main(["incident", "reported", str(incident), "early_warning", *base]) == 0
        assert main(["incident", "reported", str(incident), "notification", *base]) == 0
        capsys.readouterr()
        metrics = agent.get("/metrics")[1].decode()
        assert 'stage="early_warning"' not in metrics and 'stage="notification"' not in metrics
        assert (
            f'vaktpost_significant_overdue{{incident="{incident}",stage="final_report"}} 0.0'
            in metrics
        )

        assert main(["incident", "report", str(incident), "--url", agent.base]) == 0
        draft = capsys.readouterr().out
        assert (
            main(["incident", "report", str(incident), "--url", agent.base, "--format", "json"])
            == 0
        )
        doc = json.loads(capsys.readouterr().out)
        audit = call(agent, "GET", "/api/v1/audit?days=1")[1]["audit"]
    target.release()
    assert draft.startswith(f"# Incident report draft: incident {incident} (social/case)")
    assert "| Socialtjänsten | Treserva | 4h | 1d | Paper forms in binder B |" in draft
    assert "- Early warning: due " in draft and "sent " in draft and "by ops" in draft
    assert "- Final report: due " in draft
    assert doc["significant"]["stages"][2]["reported_at"] is None
    assert doc["impacted"][0]["fallback"] == "Paper forms in binder B"
    assert any(e["kind"] == "opened" for e in doc["timeline"])
    actions = {(e["action"], e["actor"], e["detail"]) for e in audit}
    assert ("significant", "ops", "patient data") in actions
    assert ("reported", "ops", "notification") in actions
