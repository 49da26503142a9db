"""History in a fleet lives in the shared PostgreSQL store: two `vaktpost run` on one
database both show an incident the engine holder recorded (daily availability, the
console's recent incidents, the audit trail's acks), the audit trail holds what
either agent did, `vaktpost report` lists the incident and the status changes of
checks run by both agents, only the engine holder prunes the database, and
`vaktpost store migrate` moves a single agent's history into it.

Before: each agent read its own SQLite, which in a fleet holds no incidents and only
the changes of the checks that agent ran; PostgreSQL was never pruned."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.cli import main
from agent.configload import read_config
from agent.history_component import HistoryComponent
from agent.results import ResultBook
from agent.state.pg_history import PostgresHistory
from agent.state.postgres import PostgresStore
from agent.state.sqlite import Store
from alerting.model import EngineState, Incident, Outcome
from checks.base import CheckResult
from core.status import Status
from tests.agent.state.pg_fixtures import PgServer
from tests.helpers import ROOT, AgentProcess, free_port, vaktpost_cmd, wait_until

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  timezone: UTC
  fleet: {{lease: 3s}}
  defaults: {{interval: 0.5s, timeout: 0.5s, failures_before_alert: 1}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: app-a, type: tcp, host: 127.0.0.1, port: {app}, run_on: [srv-a]}}
  - {{name: bk-a, type: backup_files, path: "{backups}/a-*.bak", run_on: [srv-a]}}
  - {{name: bk-b, type: backup_files, path: "{backups}/b-*.bak", run_on: [srv-b]}}
departments:
  - id: dept
    systems:
      - id: app
        checks: [app-a]
        backups: [{{check: bk-a, rpo: 1d}}, {{check: bk-b, rpo: 1d}}]
    escalation:
      - {{after: 0s, notify: [log]}}
"""


@contextlib.contextmanager
def accepting(port: int) -> Iterator[None]:
    """The app comes back: a listener on its port."""
    with socket.create_server(("127.0.0.1", port), backlog=64) as server:

        def accept_forever() -> None:
            with contextlib.suppress(OSError):  # closed at the end
                while True:
                    conn, _ = server.accept()
                    conn.close()

        threading.Thread(target=accept_forever, daemon=True).start()
        yield


def write_config(tmp: Path, name: str, dsn: str, app: int, backups: Path) -> tuple[Path, int]:
    port = free_port()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        CONFIG.format(
            name=name, port=port, state=tmp / f"state-{name}", dsn=dsn, app=app, backups=backups
        )
    )
    return cfg, port


def get_json(agent: AgentProcess, path: str) -> Any:
    status, body = agent.get(path)
    assert status == 200, (path, body)
    return json.loads(body)


def incidents(agent: AgentProcess, state: str) -> list[dict[str, Any]]:
    """The app's incidents (a lapsed agent has its own, while the other starts)."""
    found = get_json(agent, f"/api/v1/incidents?state={state}")["incidents"]
    return [i for i in found if (i["department"], i["system"]) == ("dept", "app")]


def report(cfg: Path, month: str) -> dict[str, Any]:
    done = subprocess.run(
        vaktpost_cmd("report", "-c", str(cfg), "--month", month, "--format", "json"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@dataclass
class Fleet:
    agents: dict[str, AgentProcess]
    configs: dict[str, Path]
    dsn: str
    incident: int


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Fleet]:
    """Two agents; app-a (run by srv-a) down and back, acknowledged at srv-b, which is
    also reloaded: the scenario every test below reads."""
    tmp = tmp_path_factory.mktemp("fleet-history")
    dsn = pg_server.new_database()
    backups = tmp / "backups"
    backups.mkdir()
    (backups / "a-1.bak").write_bytes(b"a" * 64)
    (backups / "b-1.bak").write_bytes(b"b" * 64)
    app = free_port()  # nothing listens yet: app-a is down
    written = {n: write_config(tmp, n, dsn, app, backups) for n in ("srv-a", "srv-b")}
    agents = {
        n: AgentProcess(cfg, tmp / f"{n}.log", port=port) for n, (cfg, port) in written.items()
    }
    try:
        for agent in agents.values():
            agent.wait_ready()
        b = agents["srv-b"]
        wait_until(lambda: incidents(b, "open"), timeout=30, what="app-a's incident at srv-b")
        (opened,) = incidents(b, "open")
        ack = json.dumps({"by": "anna", "comment": "on it"}).encode()
        status, body = b.request("POST", f"/api/v1/incidents/{opened['id']}/ack", ack)
        assert status == 200, body
        b.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: any(e["action"] == "reload" for e in get_json(b, "/api/v1/audit")["audit"]),
            timeout=15,
            what="srv-b's reload in its audit trail",
        )
        time.sleep(1.0)  # the incident's downtime: at least a second, asserted below
        with accepting(app):
            wait_until(
                lambda: all(not incidents(x, "open") for x in agents.values()),
                timeout=30,
                what="the incident resolved at both agents",
            )
            yield Fleet(agents, {n: cfg for n, (cfg, _) in written.items()}, dsn, opened["id"])
    finally:
        for agent in agents.values():
            agent.stop()


def recorded(pg_server: PgServer, fleet: Fleet) -> set[str]:
    """The checks with status changes in the shared history (each agent flushes its
    own every second)."""
    sql = "SELECT DISTINCT check_name FROM check_history"
    return set(pg_server.psql(sql, _db(fleet.dsn)).split())


def test_availability_and_recent_incidents_show_the_fleets_incident_at_both_agents(
    fleet: Fleet,
) -> None:
    for name, agent in fleet.agents.items():
        doc = get_json(agent, "/api/v1/history?system=dept/app&days=1")
        (today,) = doc["days"]
        assert today["downtime_seconds"] >= 1.0, (name, doc)
        status, page = agent.get("/")
        assert status == 200
        assert f'href="/incidents/{fleet.incident}?lang=' in page.decode(), name


def test_the_report_lists_the_incident_and_both_agents_checks(
    fleet: Fleet, pg_server: PgServer
) -> None:
    wait_until(
        lambda: {"bk-a", "bk-b"} <= recorded(pg_server, fleet),
        timeout=10,
        what="the backups' changes of both agents in the shared history",
    )
    month = datetime.now(UTC).strftime("%Y-%m")
    docs = {n: report(cfg, month) for n, cfg in fleet.configs.items()}
    for name, doc in docs.items():
        (dept,) = doc["departments"]
        assert [i["id"] for i in dept["incidents"]] == [fleet.incident], (name, dept)
        (listed,) = dept["incidents"]
        assert listed["resolved_at"] and listed["time_to_first_ack_seconds"] is not None
        (system,) = dept["systems"]
        assert system["incidents"] == 1 and system["downtime_seconds"] >= 1.0, (name, system)
        # bk-a's changes were recorded by srv-a, bk-b's by srv-b: both in either report.
        ready = {bk["check"]: bk["ready_seconds"] for bk in system["backups"]}
        assert ready["bk-a"] > 0 and ready["bk-b"] > 0, (name, ready)
    # The same incidents from either agent's config (the rest runs up to `now`).
    a, b = (docs[n]["departments"][0]["incidents"] for n in ("srv-a", "srv-b"))
    assert a == b


def test_the_audit_trail_and_status_changes_hold_what_every_agent_did(
    fleet: Fleet, pg_server: PgServer
) -> None:
    for name, agent in fleet.agents.items():
        trail = get_json(agent, "/api/v1/audit?days=1")["audit"]
        acks = [(e["actor"], e["target"]) for e in trail if e["action"] == "ack"]
        assert acks == [("anna", f"incident {fleet.incident}")], (name, trail)
        # srv-b was reloaded: srv-a's trail has it too.
        assert [e["actor"] for e in trail if e["action"] == "reload"] == ["SIGHUP"], (name, trail)
    wait_until(
        lambda: {"app-a", "bk-a", "bk-b"} <= recorded(pg_server, fleet),
        timeout=10,
        what="the status changes of both agents' checks in one history",
    )


def _db(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1].split("?", 1)[0]


def _old_incident(iid: int, resolved: float | None) -> Incident:
    found = Incident(iid, "dept", "app", resolved - 10 if resolved else time.time(), ["app-a"])
    found.resolved_at = resolved
    return found


async def test_only_the_engine_holder_prunes_the_shared_store(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f'agent: {{name: srv-a, store: "{dsn}", history: 1d}}\n')
    config = read_config(str(cfg))
    stores = [PostgresStore(dsn, agent=n) for n in ("srv-a", "srv-b")]
    for store in stores:
        await store.open()
    try:
        holder = stores[0]
        long_ago = time.time() - 3 * 86400.0
        old, still_open = _old_incident(1, long_ago), _old_incident(2, None)
        out = Outcome(incidents={1: old, 2: still_open})
        await holder.persist(out, EngineState(next_incident_id=3))
        assert await holder.take_lease(30.0) is not None
        components = [
            HistoryComponent(
                SimpleNamespace(config=config, book=ResultBook(), store=None, shared_store=s)
            )
            for s in stores
        ]
        mine, theirs = components
        assert isinstance(theirs.store, PostgresHistory)
        assert await theirs.prune() is False, "a non-holder prunes nothing: it tries again soon"
        assert [s.id for s in await theirs.store.spans(0, time.time() + 1)] == [1, 2]
        assert await mine.prune() is True
        spans = await theirs.store.spans(0, time.time() + 1)
        assert [s.id for s in spans] == [2], "resolved past agent.history: gone; open: kept"
    finally:
        await asyncio.gather(*(s.close() for s in stores))


def _old_history(db: sqlite3.Connection) -> None:
    """A single agent's history, with ids that must survive the move."""
    db.execute(
        "INSERT INTO check_history(id, check_name, at, status, message) VALUES"
        " (7, 'web', 100.0, 'critical', 'refused'), (9, 'web', 200.0, 'ok', 'up')"
    )
    db.execute(
        "INSERT INTO audit_log(id, at, actor, action, target, detail) VALUES"
        " (4, 150.0, 'anna', 'reload', 'cfg', 'accepted')"
    )
    db.execute(
        "INSERT INTO restore_tests(id, check_name, at, ok, seconds)"
        " VALUES (3, 'bk', 120.0, 1, 42.5)"
    )


def test_store_migrate_moves_the_history_ids_and_all(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    sqlite = Store(state)
    sqlite.open_sync()
    try:
        sqlite.call_sync(_old_history)
    finally:
        sqlite.close_sync()
    dsn = pg_server.new_database()
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f"agent: {{name: srv-a, state_dir: {state}}}\n")
    assert main(["store", "migrate", "-c", str(cfg), "--to", dsn]) == 0
    out = capsys.readouterr().out
    assert "2 status changes, 1 audit entries, 1 restore tests" in out, out
    db = _db(dsn)
    assert pg_server.psql("SELECT id, status FROM check_history ORDER BY id", db) == (
        "7|critical\n9|ok"
    )
    assert pg_server.psql("SELECT id, actor, detail FROM audit_log", db) == "4|anna|accepted"
    assert pg_server.psql("SELECT id, check_name, ok, seconds FROM restore_tests", db) == (
        "3|bk|1|42.5"
    )
    # The sequences are past the copied ids: the fleet's next rows do not collide.
    for table, columns, values in (
        ("check_history", "check_name, at, status, message", "'web', 300, 'ok', ''"),
        ("audit_log", "at, actor, action, target, detail", "300, 'bo', 'reload', 'cfg', ''"),
        ("restore_tests", "check_name, at, ok, seconds", "'bk', 300, 1, 1"),
    ):
        new = pg_server.psql(f"INSERT INTO {table}({columns}) VALUES ({values}) RETURNING id", db)
        copied = {"check_history": 9, "audit_log": 4, "restore_tests": 3}[table]
        assert int(new.splitlines()[0]) > copied, (table, new)
    # Only history in the target still counts as state there.
    pg_server.psql("TRUNCATE check_results, check_state, alert_meta", db)
    assert main(["store", "migrate", "-c", str(cfg), "--to", dsn]) == 3
    err = capsys.readouterr().err
    assert "already holds state (3 check_history, 2 audit_log, 2 restore_tests)" in err, err


def test_report_on_a_fleet_store_it_cannot_open_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(
        "agent: {name: srv-a, store: 'postgresql://vaktpost@127.0.0.1:1/x',"
        f" store_password_file: {tmp_path / 'missing.pass'}}}\n"
    )
    assert main(["report", "-c", str(cfg), "--month", "2026-11", "--format", "json"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("cannot read the state store: cannot read store_password_file"), err


async def test_a_check_that_moved_here_records_no_repeated_change(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f'agent: {{name: srv-b, store: "{dsn}"}}\n'
        "checks: [{name: web, type: tcp, host: 127.0.0.1, port: 1}]\n"
    )
    config = read_config(str(cfg))
    stores = [PostgresStore(dsn, agent=n) for n in ("srv-a", "srv-b")]
    for store in stores:
        await store.open()
    try:
        book = ResultBook()
        book.configure(config.checks)
        here = HistoryComponent(
            SimpleNamespace(config=config, book=book, store=None, shared_store=stores[1])
        )
        await here.start()
        # After srv-b started, srv-a (which ran `web` then) saw it fail; then it moved here.
        await PostgresHistory(stores[0]).record_changes([("web", 100.0, "critical", "refused")])
        book.record("web", CheckResult(Status.CRITICAL, "refused", {}, 0.1, 200.0))
        book.record("web", CheckResult(Status.OK, "up", {}, 0.1, 300.0))
        await here.stop()  # flushes
        changes = await here.store.check_changes("web", 0.0, 1000.0)
        assert [(c["at"], c["status"]) for c in changes] == [(100.0, "critical"), (300.0, "ok")]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_the_status_page_reads_incidents_from_memory_while_the_store_is_down(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f'agent: {{name: srv-a, store: "{dsn}"}}\n')
    store = PostgresStore(dsn, agent="srv-a")
    await store.open()
    try:
        now = time.time()
        await store.persist(
            Outcome(incidents={1: _old_incident(1, now - 60)}), EngineState(next_incident_id=2)
        )
        history = HistoryComponent(
            SimpleNamespace(
                config=read_config(str(cfg)), book=ResultBook(), store=None, shared_store=store
            )
        )
        assert [s.id for s in await history.spans(now - 86400, now, from_memory=True)] == [1]
    finally:
        await store.close()
    # The pool is gone: a read fails as in an outage. The page answers from what it read,
    # the API (not from memory) says the store failed.
    assert [s.id for s in await history.spans(now - 86400, now, from_memory=True)] == [1]
    with pytest.raises(Exception) as failed:
        await history.spans(now - 86400, now)
    assert history.is_store_failure(failed.value)
    store.writable = False  # known down: no wait for the pool's timeout
    started = time.monotonic()
    assert [s.id for s in await history.spans(now - 3600, now, from_memory=True)] == [1]
    assert await history.spans(now - 86400, now - 3600, from_memory=True) == []
    assert time.monotonic() - started < 1.0


def test_report_never_migrates_the_fleets_schema(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = pg_server.new_database()  # no agent ever ran on it
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f'agent: {{name: srv-a, store: "{dsn}"}}\n')
    assert main(["report", "-c", str(cfg), "--month", "2026-11", "--format", "json"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has schema version 0, this vaktpost reads" in err, err
    tables = pg_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname='public'", _db(dsn))
    assert tables == "0", "a report only reads"
