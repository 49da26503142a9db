"""Twelve kinds of damage to a real store, made by a real daemon with an open incident.

Each either starts monitoring on a fresh store (the damaged files moved aside,
one ERROR line, incident ids above every id used before) or, for a store of a
newer vaktpost only, refuses to start with the reason in one line. Never a
traceback, never a silent fresh start whose ids restart at 1.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.state.damage import wal_damage
from agent.state.sqlite import Store, StoreError
from agent.state.sqlite_alerting import read_state
from alerting.plan import STORE_CHECK
from tests.alerting_fixtures import TcpTarget, ThreadedReceiver
from tests.conftest import wait_until
from tests.faults.store_fixtures import AGENT, StoreDaemon, incident_id, write_config

DB = "vaktpost.db"
FIRST_KEY = f"{AGENT}/dept/app/1/0"


class Template:
    """A store left by a daemon killed with -9 (`killed`: with its WAL) and its checkpoint."""

    def __init__(self, root: Path, target: TcpTarget) -> None:
        self.root = root
        self.target = target
        self.killed = root / "killed"
        self.clean = root / "clean"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    root = tmp_path_factory.mktemp("corrupt-template")
    target = TcpTarget()  # bound, never listening: the check fails at once
    made = Template(root, target)
    with ThreadedReceiver() as receiver:
        state = root / "state"
        port = write_config(root / "cfg.yaml", state, receiver.url, target.port)
        daemon = StoreDaemon(root / "cfg.yaml", port, root / "first.log")
        try:
            wait_until(lambda: FIRST_KEY in receiver.dedup_keys(), 30, "the first step delivered")
            wait_until(lambda: _delivered(state / DB, FIRST_KEY), 10, "its delivery recorded")
        finally:
            daemon.stop(signal.SIGKILL)
    shutil.copytree(state, made.killed)
    shutil.copytree(state, made.clean)
    conn = sqlite3.connect(made.clean / DB)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()  # the last connection removes the WAL
    assert not (made.clean / f"{DB}-wal").exists()
    assert wal_damage(made.killed / f"{DB}-wal") is None, "an intact WAL is not damage"
    assert (made.killed / f"{DB}-wal").stat().st_size > 3 * 4096, "the kill left a WAL"
    yield made


def _delivered(db: Path, key: str) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT state FROM outbox WHERE dedup_key=?", (key,)).fetchone()
    finally:
        conn.close()
    return row is not None and row[0] == "delivered"


# -- the damage ------------------------------------------------------------------------------
def truncate_half(state: Path) -> None:
    db = state / DB
    os.truncate(db, db.stat().st_size // 2)


def zero_header(state: Path) -> None:
    with (state / DB).open("r+b") as f:
        f.write(bytes(100))


def random_page(state: Path) -> None:
    conn = sqlite3.connect(state / DB)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='incidents'").fetchone()[0]
    conn.close()
    with (state / DB).open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(random.Random(9).randbytes(page_size))


def garbage_file(state: Path) -> None:
    (state / DB).write_bytes(random.Random(3).randbytes(64 * 1024))


def directory(state: Path) -> None:
    (state / DB).unlink()
    (state / DB).mkdir()
    (state / DB / "something").write_text("x")


def fifo(state: Path) -> None:
    # Root reads through any chmod: a FIFO is the unreadable file (it would block forever).
    (state / DB).unlink()
    os.mkfifo(state / DB)


def damaged_wal(state: Path) -> None:
    wal = state / f"{DB}-wal"
    page_size = struct.unpack(">I", wal.read_bytes()[8:12])[0]
    with wal.open("r+b") as f:
        f.seek(32 + 24 + page_size // 2)  # inside the first frame's page
        f.write(b"\xff" * 16)


def newer_version(state: Path) -> None:
    conn = sqlite3.connect(state / DB)
    conn.execute("PRAGMA user_version=99")
    conn.close()


def empty_file(state: Path) -> None:
    os.truncate(state / DB, 0)


def table_dropped(state: Path) -> None:
    conn = sqlite3.connect(state / DB)
    conn.execute("DROP TABLE alert_checks")
    conn.close()


def bad_json_row(state: Path) -> None:
    conn = sqlite3.connect(state / DB)
    conn.execute('UPDATE incidents SET data=\'{"id": 1, "department\' WHERE id=1')
    conn.commit()
    conn.close()


def missing_field(state: Path) -> None:
    conn = sqlite3.connect(state / DB)
    conn.execute("UPDATE incidents SET data=json_remove(data, '$.started_at') WHERE id=1")
    conn.commit()
    conn.close()


Damage = Callable[[Path], None]
KINDS: list[tuple[Damage, str]] = [
    (truncate_half, "clean"),
    (zero_header, "clean"),
    (random_page, "clean"),
    (garbage_file, "clean"),
    (directory, "clean"),
    (fifo, "clean"),
    (damaged_wal, "killed"),
    (empty_file, "clean"),
    (table_dropped, "clean"),
    (bad_json_row, "clean"),
    (missing_field, "clean"),
]


@pytest.mark.parametrize(("damage", "source"), KINDS, ids=[k.__name__ for k, _ in KINDS])
def test_damaged_store_is_moved_aside_and_monitoring_continues(
    template: Template, tmp_path: Path, damage: Damage, source: str
) -> None:
    state = tmp_path / "state"
    shutil.copytree(template.clean if source == "clean" else template.killed, state)
    damage(state)
    with ThreadedReceiver() as receiver:
        port = write_config(tmp_path / "cfg.yaml", state, receiver.url, template.target.port)
        daemon = StoreDaemon(tmp_path / "cfg.yaml", port, tmp_path / "daemon.log")
        try:
            wait_until(
                lambda: daemon.listening() or daemon.proc.poll() is not None, 30, "the daemon"
            )
            assert daemon.proc.poll() is None, daemon.stderr()
            assert daemon.get("/readyz")[0] == 200
            assert daemon.metric("vaktpost_store_up") == 1.0
            assert (daemon.metric("vaktpost_store_recovered_timestamp_seconds") or 0) > 0
            keys = wait_until(
                lambda: [k for k in receiver.dedup_keys() if incident_id(k) > 1],
                30,
                "a step of a new incident delivered",
            )

            def store_incident() -> list[dict[str, Any]]:
                body = daemon.get("/api/v1/incidents?state=open")[1]
                found = [i for i in json.loads(body)["incidents"] if i["system"] == STORE_CHECK]
                return found

            (told,) = wait_until(store_incident, 30, "the recovery raised as an incident")
            assert told["checks"] == [STORE_CHECK]
        finally:
            code = daemon.stop()
    assert "Traceback" not in daemon.stderr()
    assert code == 0
    assert FIRST_KEY not in receiver.dedup_keys(), "the new incident's keys are new"
    assert all(incident_id(k) > 1 for k in keys), keys
    errors = [r for r in daemon.records() if r.get("level") == "error"]
    assert [r["msg"] for r in errors] == [
        "state store damaged: moved aside, monitoring continues on a fresh store"
    ], errors
    moved = Path(errors[0]["moved_to"])
    assert moved.parent == state and moved.name.startswith(f"{DB}.corrupt-")
    assert moved.exists() or moved.is_symlink()
    if source == "killed":
        assert Path(f"{moved}-wal").exists(), "the damaged WAL moved with its database"
    conn = sqlite3.connect(state / DB)
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    conn.close()


def test_store_of_a_newer_version_refuses_to_start_in_one_line(
    template: Template, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    shutil.copytree(template.clean, state)
    newer_version(state)
    with ThreadedReceiver() as receiver:
        port = write_config(tmp_path / "cfg.yaml", state, receiver.url, template.target.port)
        daemon = StoreDaemon(tmp_path / "cfg.yaml", port, tmp_path / "daemon.log")
        try:
            code = daemon.proc.wait(timeout=30)
        finally:
            daemon.stop(signal.SIGKILL)
    stderr = daemon.stderr()
    assert code != 0
    assert "Traceback" not in stderr
    errors = [r for r in daemon.records() if r.get("level") in ("error", "raw")]
    assert len(errors) == 1, stderr
    assert "schema version 99 is newer than this vaktpost" in str(errors[0]), errors
    assert sorted(p.name for p in state.iterdir() if ".corrupt-" in p.name) == []


# -- the store side, in process --------------------------------------------------------------
def test_ids_continue_above_the_damaged_files_ids(tmp_path: Path) -> None:
    """Ids above the recovery's Unix time (a store recovered before) still continue."""
    high = 10**10
    store = Store(tmp_path)
    store.open_sync()
    store.call_sync(
        lambda db: db.executemany(
            "INSERT INTO alert_meta(key, value) VALUES (?, ?)",
            [("next_incident_id", str(high)), ("next_silence_id", "8")],
        )
    )
    store.close_sync()
    missing_field_row(tmp_path, high - 1)
    again = Store(tmp_path)
    again.open_sync(recover=True, verify=(read_state,))
    try:
        assert again.recovery is not None
        assert again.recovery.next_incident_id == high
        state = again.call_sync(read_state)
        assert (state.next_incident_id, state.next_silence_id) == (high, 8)
        assert again.recovered_at == again.recovery.at
        assert again.recovery.moved_to.exists()
    finally:
        again.close_sync()


def missing_field_row(state: Path, incident: int) -> None:
    conn = sqlite3.connect(state / DB)
    data = json.dumps({"id": incident, "department": "dept", "system": "app"})  # no started_at
    conn.execute(
        "INSERT INTO incidents(id, department, system, status, started_at, data)"
        " VALUES (?, 'dept', 'app', 'firing', 0, ?)",
        (incident, data),
    )
    conn.commit()
    conn.close()


def test_only_the_daemon_moves_a_store_aside(template: Template, tmp_path: Path) -> None:
    """One-shot commands (recover=False) get a one-line StoreError; the file stays."""
    state = tmp_path / "state"
    shutil.copytree(template.clean, state)
    zero_header(state)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(state).open_sync()
    assert sorted(p.name for p in state.iterdir()) == [DB]


def test_a_torn_last_wal_frame_is_not_damage(template: Template, tmp_path: Path) -> None:
    """Power loss may tear the last write: SQLite drops it, and nothing committed is lost."""
    wal = tmp_path / "wal"
    shutil.copy(template.killed / f"{DB}-wal", wal)
    data = bytearray(wal.read_bytes())
    data[-10:] = b"\xee" * 10
    wal.write_bytes(bytes(data))
    assert wal_damage(wal) is None
    data[40:50] = b"\xee" * 10  # the first frame: committed frames follow it
    wal.write_bytes(bytes(data))
    assert wal_damage(wal) == "the WAL is damaged at frame 1; committed frames follow it"
