"""`vaktpost store migrate`: one agent's SQLite state into a shared PostgreSQL store.

What moves: the latest results and per-check state (push state, the ack-link key,
drill and report clocks), the engine's check tracks, every incident with its
timeline and clocks, silences, the outbox (delivered rows too, so a step already
sent is not sent again) and the engine's counters. Ids are kept: incident ids and
outbox dedup keys are what ladders, ack links and receivers know them by, and the
PostgreSQL sequences are moved past them. The history moves too (status changes,
the audit trail, restore tests): in a fleet it is the shared store's
(agent/state/pg_history.py), read by every agent and by `vaktpost report`.

Both sides are guarded: the SQLite file is opened in exclusive locking mode, which
fails while a running agent holds it open (and keeps one from starting until the
copy is done); the target must hold no vaktpost state and no live agent, unless
`replace` is given, and then only the state is replaced (never under live agents).
All rows are written in one transaction: a failure leaves the target as it was.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

from agent.state.postgres import migrate, redacted
from agent.state.postgres_errors import PostgresStoreError
from agent.state.sqlite import DB_NAME
from agent.state.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS

# Tables that move, in the order they are written; the columns both stores share.
TABLES: dict[str, tuple[str, ...]] = {
    "check_results": (
        "check_name", "type", "status", "message", "facts", "duration_seconds", "finished_at",
    ),
    "check_state": ("check_name", "key", "value"),
    "alert_checks": ("check_name", "data"),
    "incidents": ("id", "department", "system", "status", "started_at", "resolved_at", "data"),
    "incident_events": ("id", "incident_id", "at", "kind", "step", "channels", "message"),
    "silences": ("id", "ends_at", "data"),
    "outbox": (
        "id", "dedup_key", "channel", "incident_id", "kind", "created_at", "payload", "state",
        "attempts", "next_attempt_at", "last_error", "done_at",
    ),
    "alert_meta": ("key", "value"),
    "check_history": ("id", "check_name", "at", "status", "message"),
    "audit_log": ("id", "at", "actor", "action", "target", "detail"),
    "restore_tests": ("id", "check_name", "at", "ok", "seconds"),
}  # fmt: skip
# Columns filled by BIGSERIAL in PostgreSQL: moved past the copied ids.
SERIALS = ("incident_events", "outbox", "check_history", "audit_log", "restore_tests")
# alert_meta keys that describe one SQLite file, not the state in it.
LOCAL_META = ("store_probe", "store_recovered_at", "store_recovered_from")


class MigrateError(Exception):
    """Why the state was not moved, in one line."""


@dataclass
class SqliteState:
    path: Path
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def count(self, table: str) -> int:
        return len(self.rows.get(table, []))

    def open_incidents(self) -> int:
        # incidents columns: resolved_at is the sixth.
        return sum(1 for r in self.rows.get("incidents", []) if r[5] is None)


class SqliteSource:
    """The agent's SQLite store, held exclusively while it is read and copied."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> SqliteSource:
        if not self.path.is_file():
            raise MigrateError(f"no state store at {self.path} (is agent.state_dir right?)")
        try:
            db = sqlite3.connect(
                f"file:{self.path}?mode=rw", uri=True, isolation_level=None, timeout=0
            )
        except sqlite3.Error as exc:
            raise MigrateError(f"cannot open {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise MigrateError(
                    f"{self.path} is in use: stop the agent (and any `vaktpost check`) first"
                ) from None
            raise MigrateError(f"cannot lock {self.path}: {exc}") from None
        self._db = db
        return self

    def __exit__(self, *exc: object) -> None:
        if self._db is not None:
            self._db.close()  # the transaction only read: closing ends it and the lock
            self._db = None

    def read(self) -> SqliteState:
        db = self._db
        assert db is not None
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(SQLITE_MIGRATIONS):
                raise MigrateError(
                    f"{self.path}: schema version {version} is newer than this vaktpost"
                    f" ({len(SQLITE_MIGRATIONS)}); use the vaktpost that wrote it"
                )
            present = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            state = SqliteState(self.path)
            for table, columns in TABLES.items():
                if table not in present:
                    continue  # a store from before the engine's tables: nothing of it
                state.rows[table] = db.execute(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise MigrateError(f"cannot read {self.path}: {exc}") from None
        state.rows["alert_meta"] = [
            r for r in state.rows.get("alert_meta", []) if r[0] not in LOCAL_META
        ]
        return state


async def connect(conninfo: str, password: str | None) -> AsyncConnection[Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if password is not None:
        kwargs["password"] = password  # else libpq reads PGPASSWORD and ~/.pgpass
    try:
        if "connect_timeout" not in conninfo_to_dict(conninfo):
            kwargs["connect_timeout"] = 10  # a host that drops packets must not hang the CLI
        return await AsyncConnection.connect(conninfo, **kwargs)
    except psycopg.Error as exc:
        raise MigrateError(f"cannot reach {redacted(conninfo)}: {_one_line(exc)}") from None


async def target_contents(conn: AsyncConnection[Any]) -> list[str]:
    """What the target already holds, as "3 incidents", "12 outbox" ...: empty if nothing."""
    found = []
    for table in TABLES:
        where = " WHERE key NOT IN ('store_probe')" if table == "alert_meta" else ""
        cur = await conn.execute(f"SELECT COUNT(*) FROM {table}{where}")
        row = await cur.fetchone()
        if row and int(row[0]):
            found.append(f"{int(row[0])} {table}")
    return found


async def live_agents(conn: AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute(
        "SELECT DISTINCT name FROM fleet_agents WHERE expires_at > now()"
        " UNION SELECT holder_name FROM leases WHERE expires_at > now() ORDER BY 1"
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def copy_into(
    conn: AsyncConnection[Any], state: SqliteState, agent: str, replace: bool
) -> None:
    """Every row in one transaction; the target's schema is created or brought up to date."""
    try:
        await migrate(conn)
    except PostgresStoreError as exc:
        raise MigrateError(str(exc)) from None
    async with conn.transaction():
        # Agents starting now wait for the copy instead of reading half of it.
        await conn.execute("LOCK TABLE incidents, outbox, leases IN EXCLUSIVE MODE")
        running = await live_agents(conn)
        if running:
            raise MigrateError(f"agents run on the target ({', '.join(running)}): stop them first")
        there = await target_contents(conn)
        if there and not replace:
            raise MigrateError(
                f"the target already holds state ({', '.join(there)}): give --replace to"
                " overwrite it, or choose an empty database"
            )
        if there:
            await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        async with conn.cursor() as cur:
            for table, columns in TABLES.items():
                rows = state.rows.get(table, [])
                if not rows:
                    continue
                names = list(columns)
                if table == "check_results":
                    names.append("agent")  # who ran it: this agent, before the fleet
                    rows = [(*r, agent) for r in rows]
                marks = ", ".join(["%s"] * len(names))
                await cur.executemany(
                    f"INSERT INTO {table}({', '.join(names)}) VALUES ({marks})", rows
                )
            for table in SERIALS:
                await cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
