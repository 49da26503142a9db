"""History: an incident's timeline through open, step, ack, silence and resolve,
status changes and the audit trail, kept across a restart and pruned past
agent.history (DESIGN.md, History)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from agent.state.sqlite import Store
from agent.state.sqlite_history import HistoryStore
from tests.alerting_fixtures import TcpTarget
from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  name: hist
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  oncall: {{type: log, default: true}}
checks:
  - {{name: journal, type: tcp, host: 127.0.0.1, port: {target}}}
departments:
  - id: social
    systems:
      - {{id: case, checks: [journal], rto: 4h, mtpd: 1d, fallback: "Paper forms"}}
    escalation:
      - {{after: 0s, notify: [oncall]}}
"""


def get_json(agent: AgentProcess, path: str) -> Any:
    status, body = agent.get(path)
    assert status == 200, body
    return json.loads(body)


def post_json(agent: AgentProcess, path: str, doc: dict[str, Any]) -> Any:
    from tests.helpers import http_request

    status, body = http_request(agent.base + path, "POST", json.dumps(doc).encode())
    assert status in (200, 201), body
    return json.loads(body)


def test_incident_timeline_is_complete_in_order_and_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    target = TcpTarget()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(port=port, state=tmp_path / "s", target=target.port))
    with AgentProcess(cfg, tmp_path / "a.log", port=port) as agent:
        agent.wait_ready()
        wait_until(lambda: get_json(agent, "/api/v1/incidents?state=open")["incidents"], 15, "open")
        incident = get_json(agent, "/api/v1/incidents?state=open")["incidents"][0]
        path = f"/api/v1/incidents/{incident['id']}"

        def delivered() -> bool:
            kinds = [e["kind"] for e in get_json(agent, path)["timeline"]]
            return "delivery" in kinds

        wait_until(delivered, 15, "the first step delivered")
        post_json(agent, path + "/ack", {"by": "anna", "comment": "on it"})
        post_json(
            agent,
            "/api/v1/silences",
            {"matchers": {"system": "case"}, "duration_seconds": 600, "comment": "work"},
        )
        target.open()
        wait_until(lambda: get_json(agent, path)["status"] == "resolved", 15, "resolved")
        post_json(agent, "/-/reload", {})
    with AgentProcess(cfg, tmp_path / "b.log", port=port) as agent:
        agent.wait_ready()
        doc = get_json(agent, path)
        audit = get_json(agent, "/api/v1/audit?days=1")["audit"]
        changes = HistoryStore(Store(tmp_path / "s"))
    target.release()
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "opened"
    assert kinds.index("notify") < kinds.index("delivery") < kinds.index("acknowledged")
    assert kinds[-1] in ("resolved", "delivery") and "resolved" in kinds
    assert kinds.index("acknowledged") < kinds.index("resolved")
    first = next(e for e in doc["timeline"] if e["kind"] == "delivery")
    assert first["channels"] == ["oncall"] and first["outcome"] == "delivered"
    ack = next(e for e in doc["timeline"] if e["kind"] == "acknowledged")
    assert ack["message"] == "anna via api: on it"
    stamps = [e["at"] for e in doc["timeline"]]
    assert stamps == sorted(stamps)
    actions = {(e["action"], e["actor"]) for e in audit}
    assert ("ack", "anna") in actions
    assert any(a == "silence" for a, _ in actions)
    assert any(a == "reload" for a, _ in actions)
    store = changes.store
    store.open_sync()
    try:
        rows = store.call_sync(
            lambda db: db.execute(
                "SELECT status FROM check_history WHERE check_name='journal' ORDER BY id"
            ).fetchall()
        )
    finally:
        store.close_sync()
    statuses = [r[0] for r in rows]
    # critical when it was down, ok when it came back; a restart adds no false change
    assert statuses[:1] == ["critical"] and statuses[-1] == "ok"
    assert all(a != b for a, b in itertools.pairwise(statuses))


def test_pruning_drops_what_ended_before_the_horizon_and_keeps_open_incidents(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.open_sync()
    now = time.time()
    old, recent = now - 500 * 86400, now - 10 * 86400

    def seed(db: Any) -> None:
        for iid, start, end in ((1, old, old + 60), (2, recent, recent + 60), (3, old, None)):
            db.execute(
                "INSERT INTO incidents(id, department, system, status, started_at, resolved_at,"
                " data) VALUES (?, 'd', 's', 'x', ?, ?, '{}')",
                (iid, start, end),
            )
            db.execute(
                "INSERT INTO incident_events(incident_id, at, kind, step, channels, message)"
                " VALUES (?, ?, 'opened', NULL, '[]', '')",
                (iid, start),
            )
        for at, status in ((old, "critical"), (old + 5, "ok"), (recent, "critical")):
            db.execute(
                "INSERT INTO check_history(check_name, at, status, message) VALUES ('c', ?, ?, '')",
                (at, status),
            )
        db.execute(
            "INSERT INTO audit_log(at, actor, action, target, detail)"
            " VALUES (?, 'x', 'reload', '', '')",
            (old,),
        )

    store.call_sync(seed)
    history = HistoryStore(store)
    from agent.state.sqlite_history import prune_sync

    counts = store.call_sync(lambda db: prune_sync(db, now - 400 * 86400))
    ids = [
        r[0]
        for r in store.call_sync(
            lambda db: db.execute("SELECT id FROM incidents ORDER BY id").fetchall()
        )
    ]
    events = store.call_sync(
        lambda db: db.execute(
            "SELECT incident_id FROM incident_events ORDER BY incident_id"
        ).fetchall()
    )
    changes = store.call_sync(
        lambda db: db.execute("SELECT at, status FROM check_history ORDER BY id").fetchall()
    )
    audit = store.call_sync(lambda db: db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])
    store.close_sync()
    assert ids == [2, 3]  # the old resolved one goes; the old still-open one stays
    assert [e[0] for e in events] == [2, 3]
    # the last change before the horizon stays: it is the state the window starts in
    assert changes == [(old + 5, "ok"), (recent, "critical")]
    assert audit == 0
    assert counts["incidents"] == 1 and history is not None
    # pruned history survives reopening (a restart): nothing comes back
    store = Store(tmp_path)
    store.open_sync()
    again = store.call_sync(lambda db: db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])
    store.close_sync()
    assert again == 2
