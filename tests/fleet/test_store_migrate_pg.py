"""`vaktpost store migrate`: a single agent's SQLite state into a real PostgreSQL 15,
and the fleet continues its ladders on their clocks; bad targets and sources are
one line, exit 3, and the target is left untouched."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.cli import main
from agent.state.sqlite import Store
from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver
from tests.helpers import ROOT, AgentProcess, free_port, vaktpost_cmd, wait_until

S1, S2 = 12.0, 18.0  # the ladder's later steps: after a stop, a migrate and a start

CONFIG = """
agent:
  name: srv-app01
  listen: 127.0.0.1:{port}
  state_dir: {state}
  {store}
  fleet: {{lease: 3s}}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  hook: {{type: webhook, url: "{hook}", concurrency: 1}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: {s1}s, notify: [hook]}}
      - {{after: {s2}s, notify: [hook]}}
"""


def write_config(
    path: Path,
    state: Path,
    store: str = "",
    hook: str = "http://h.invalid/",
    ports: tuple[int, int] | None = None,
) -> Path:
    port, closed = ports or (free_port(), free_port())
    path.write_text(
        CONFIG.format(
            port=port,
            state=state,
            store=f'store: "{store}"' if store else "",
            hook=hook,
            closed=closed,
            s1=S1,
            s2=S2,
        )
    )
    return path


def port_of(cfg: Path) -> int:
    line = next(x for x in cfg.read_text().splitlines() if "listen:" in x)
    return int(line.rsplit(":", 1)[1])


def step_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


def test_an_open_incident_continues_on_its_clock_in_the_fleet(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    state = tmp_path / "state"
    with ThreadedReceiver() as receiver:
        ports = (free_port(), free_port())
        alone = write_config(tmp_path / "alone.yaml", state, hook=receiver.url, ports=ports)
        # The same agent, the same checks and state_dir: only agent.store is new.
        fleet = write_config(tmp_path / "fleet.yaml", state, dsn, receiver.url, ports)
        with AgentProcess(alone, port=port_of(alone)) as agent:
            agent.wait_ready()
            wait_until(lambda: receiver.dedup_keys(), timeout=20, what="step 0 on SQLite")
            status, body = agent.get("/api/v1/incidents")
            assert status == 200, body
            [incident] = json.loads(body)["incidents"]
        moved = subprocess.run(
            vaktpost_cmd("store", "migrate", "-c", str(fleet)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert moved.returncode == 0, moved.stderr
        assert "1 incidents (1 open)" in moved.stdout, moved.stdout
        assert "1 outbox rows" in moved.stdout, moved.stdout
        open_ids = pg_server.psql("SELECT id FROM incidents WHERE resolved_at IS NULL", dbname(dsn))
        assert open_ids == str(incident["id"]), "the incident keeps its id"
        with AgentProcess(fleet, port=port_of(fleet)) as agent:
            agent.wait_ready()
            wait_until(
                lambda: {step_of(k) for k in receiver.dedup_keys()} >= {0, 1, 2},
                timeout=S2 + 10,
                what="steps 1 and 2 from the PostgreSQL agent",
            )
            took = [r for r in agent.log_records() if r.get("msg") == "took the engine lease"]
            assert took and took[0].get("open_incidents") == 1, took
        arrivals = {step_of(k): t for t, k in receiver.arrivals}
        steps = Counter(step_of(k) for k in receiver.dedup_keys())
        keys = receiver.dedup_keys()
    assert steps == {0: 1, 1: 1, 2: 1}, f"each step once, step 0 not again: {keys}"
    assert all(k.startswith(keys[0].rsplit("/", 1)[0]) for k in keys), "one incident's keys"
    for step, after in ((1, S1), (2, S2)):
        late = arrivals[step] - arrivals[0] - after
        assert -0.6 <= late <= 2.5, f"step {step} {late:+.1f}s off its clock"


def dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1].split("?", 1)[0]


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["store", "migrate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def small_state(state: Path) -> None:
    """A SQLite store with one result and one silence counter, through the store API."""
    store = Store(state)
    store.open_sync()
    try:
        store.call_sync(
            lambda db: db.execute(
                "INSERT INTO check_results VALUES ('app', 'tcp', 'ok', 'up', '{}', 0.1, ?)",
                (time.time(),),
            )
        )
        store.set_state_sync("app", "first_seen", 1.0)
    finally:
        store.close_sync()


def test_a_target_that_holds_state_is_refused_unless_replaced(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = pg_server.new_database()
    state = tmp_path / "state"
    small_state(state)
    cfg = write_config(tmp_path / "a.yaml", state)
    code, out, err = migrate(capsys, "-c", str(cfg), "--to", dsn)
    assert code == 0, err
    assert "1 check results, 1 check states" in out
    pg_server.psql("UPDATE check_results SET message='changed in the fleet'", dbname(dsn))

    code, out, err = migrate(capsys, "-c", str(cfg), "--to", dsn)
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "already holds state (1 check_results, 1 check_state)" in err
    assert "--replace" in err
    assert pg_server.psql("SELECT message FROM check_results", dbname(dsn)) == (
        "changed in the fleet"
    ), "a refused migrate leaves the target as it was"

    code, out, err = migrate(capsys, "-c", str(cfg), "--to", dsn, "--replace")
    assert code == 0, err
    assert pg_server.psql("SELECT message, agent FROM check_results", dbname(dsn)) == (
        "up|srv-app01"
    )


def test_live_agents_on_the_target_are_refused_even_with_replace(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = pg_server.new_database()
    state = tmp_path / "state"
    small_state(state)
    cfg = write_config(tmp_path / "a.yaml", state)
    assert migrate(capsys, "-c", str(cfg), "--to", dsn)[0] == 0
    pg_server.psql(
        "INSERT INTO fleet_agents(instance, name, version, config_hash, seen_at, expires_at)"
        " VALUES ('srv-b/1', 'srv-b', '1', 'x', now(), now() + interval '1 hour')",
        dbname(dsn),
    )
    code, _, err = migrate(capsys, "-c", str(cfg), "--to", dsn, "--replace")
    assert code == 3
    assert "agents run on the target (srv-b): stop them first" in err


def test_an_unreachable_target_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    small_state(state)
    cfg = write_config(tmp_path / "a.yaml", state)
    closed = f"postgresql://vaktpost@127.0.0.1:{free_port()}/vaktpost"
    code, _, err = migrate(capsys, "-c", str(cfg), "--to", closed)
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("vaktpost store: cannot reach "), err
    assert "host=127.0.0.1" in err and "refused" in err, err


def test_a_missing_state_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "nowhere"
    cfg = write_config(tmp_path / "a.yaml", state)
    code, _, err = migrate(capsys, "-c", str(cfg), "--to", "postgresql://u@127.0.0.1:1/x")
    assert code == 3
    assert f"no state store at {state}/vaktpost.db" in err and err.count("\n") == 1, err
    assert not state.exists(), "migrate must not create a store where there was none"


def test_a_running_agent_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    small_state(state)
    cfg = write_config(tmp_path / "a.yaml", state)
    running = Store(state)  # what the daemon holds open while it runs
    running.open_sync()
    try:
        code, _, err = migrate(capsys, "-c", str(cfg), "--to", "postgresql://u@127.0.0.1:1/x")
    finally:
        running.close_sync()
    assert code == 3
    assert "is in use: stop the agent" in err, err


def test_a_password_in_the_url_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path / "a.yaml", tmp_path / "state")
    code, _, err = migrate(capsys, "-c", str(cfg), "--to", "postgresql://u:hemligt@db/x")
    assert code == 2
    assert "hemligt" not in err and "password" in err
