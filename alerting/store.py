"""The state store: SQLite in WAL mode under state_dir, with versioned migrations.

One connection, used from one worker thread, so the event loop never waits on disk.
Later migrations append to MIGRATIONS; a migration is never edited once released.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 1: latest result per check, and small per-check state (e.g. last verification)
    """
    CREATE TABLE check_results (
        check_name TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        facts TEXT NOT NULL,
        duration_seconds REAL NOT NULL,
        finished_at REAL NOT NULL
    );
    CREATE TABLE check_state (
        check_name TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (check_name, key)
    );
    """,
    # 2: the incident engine: check tracks, incidents and their timeline, silences,
    # the outbox of notifications, and counters (next incident id ...)
    """
    CREATE TABLE alert_checks (
        check_name TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        department TEXT,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        resolved_at REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX incidents_by_resolved ON incidents(resolved_at);
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        step INTEGER,
        channels TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX incident_events_by_incident ON incident_events(incident_id);
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        ends_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dedup_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        incident_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        done_at REAL,
        UNIQUE (dedup_key, channel)
    );
    CREATE INDEX outbox_by_state ON outbox(state, channel, id);
    CREATE TABLE alert_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

DB_NAME = "vaktpost.db"


class StoreError(Exception):
    pass


class Store:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaktpost-store")
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------
    def open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed step must survive power loss
            db.execute("PRAGMA busy_timeout=5000")
            migrate(db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state store {self.path}: {exc}") from exc
        self._db = db

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.open_sync)

    def close_sync(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.close_sync)
        self._executor.shutdown(wait=True)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    # -- running work ----------------------------------------------------------
    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn in one transaction (BEGIN IMMEDIATE .. COMMIT, ROLLBACK on error)."""
        with self._lock:
            if self._db is None:
                raise StoreError("store is closed")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call_sync, fn)

    # -- check results and state ----------------------------------------------
    async def save_results(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """rows: (check name, type, result JSON as in `check --format json` + finished_at)."""
        batch = [
            (
                name,
                type_,
                r["status"],
                r["message"],
                json.dumps(r["facts"]),
                r["duration_seconds"],
                r["finished_at"],
            )
            for name, type_, r in rows
        ]
        if batch:
            await self.call(lambda db: db.executemany(_UPSERT_RESULT, batch))

    def load_results_sync(self) -> dict[str, dict[str, Any]]:
        def read(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            out = {}
            for row in db.execute(
                "SELECT check_name, type, status, message, facts, duration_seconds, finished_at"
                " FROM check_results"
            ):
                out[row[0]] = {
                    "name": row[0],
                    "type": row[1],
                    "status": row[2],
                    "message": row[3],
                    "facts": json.loads(row[4]),
                    "duration_seconds": row[5],
                    "finished_at": row[6],
                }
            return out

        return self.call_sync(read)

    def get_state_sync(self, check: str, key: str) -> Any:
        row = self.call_sync(
            lambda db: db.execute(
                "SELECT value FROM check_state WHERE check_name=? AND key=?", (check, key)
            ).fetchone()
        )
        return json.loads(row[0]) if row else None

    def set_state_sync(self, check: str, key: str, value: Any) -> None:
        text = json.dumps(value)
        self.call_sync(
            lambda db: db.execute(
                "INSERT INTO check_state(check_name, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT(check_name, key) DO UPDATE SET value=excluded.value",
                (check, key, text),
            )
        )

    async def get_state(self, check: str, key: str) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.get_state_sync, check, key)

    async def set_state(self, check: str, key: str, value: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.set_state_sync, check, key, value)


_UPSERT_RESULT = (
    "INSERT INTO check_results(check_name, type, status, message, facts, duration_seconds,"
    " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(check_name) DO UPDATE SET"
    " type=excluded.type, status=excluded.status, message=excluded.message,"
    " facts=excluded.facts, duration_seconds=excluded.duration_seconds,"
    " finished_at=excluded.finished_at"
)


def migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"state store schema version {version} is newer than this vaktpost "
            f"({len(MIGRATIONS)}); refusing to touch it"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
