"""`vaktpost run` on a real PostgreSQL (agent.store): an incident opens, escalates
and its steps reach a loopback webhook; a restart continues the ladder on its
clock; the password file's content never appears in the log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver, ladder_config
from tests.helpers import AgentProcess, free_port, wait_until

SPACING = 4.0  # seconds between ladder steps


def test_a_ladder_on_postgresql_is_delivered_and_survives_a_restart(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    pwfile = tmp_path / "pg.pass"
    pwfile.write_text("not-needed-but-secret-7f3a\n")  # trust auth: read, sent, ignored
    cfg = tmp_path / "cfg.yaml"
    port = free_port()
    with ThreadedReceiver() as receiver:
        cfg.write_text(
            ladder_config(
                name="srv-a",
                port=port,
                state=tmp_path / "state",
                hook=receiver.url,
                closed=free_port(),
                steps=(0.0, SPACING, 2 * SPACING),
                agent_extra=(f'store: "{dsn}"', f"store_password_file: {pwfile}"),
            )
        )
        first = AgentProcess(cfg, port=port)
        try:
            first.wait_ready()
            wait_until(lambda: receiver.dedup_keys(), timeout=20, what="step 0 delivered")
            started = time.monotonic()
        finally:
            first.stop()
        assert receiver.dedup_keys() == ["srv-a/dept/app/1/0"]
        # The incident and its clock are in PostgreSQL, not in state_dir.
        rows = pg_server.psql(
            "SELECT id, resolved_at IS NULL FROM incidents", dsn.rsplit("/")[-1].split("?")[0]
        )
        assert rows == "1|t"
        second = AgentProcess(cfg, port=port)
        try:
            second.wait_ready()
            wait_until(lambda: len(receiver.dedup_keys()) >= 3, timeout=30, what="steps 1 and 2")
            log_text = first.log_text() + second.log_text()
        finally:
            second.stop()
        arrivals = {k: t for t, k in receiver.arrivals}
    assert receiver.dedup_keys() == [f"srv-a/dept/app/1/{i}" for i in range(3)], (
        "the same incident (id 1) continued: nothing lost, nothing repeated"
    )
    step0 = arrivals["srv-a/dept/app/1/0"]
    assert arrivals["srv-a/dept/app/1/2"] - step0 >= 2 * SPACING - 0.6, "no step early"
    assert time.monotonic() - started < 2 * SPACING + 15
    assert "not-needed-but-secret" not in log_text
    records = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert [r for r in records if r.get("msg") == "vaktpost started"], "both starts logged"
