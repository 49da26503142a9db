"""The state store: SQLite in WAL mode under state_dir, with versioned migrations.

One connection, used from one worker thread, so the event loop never waits on disk.
Later migrations append to MIGRATIONS; a migration is never edited once released.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.state.damage import NewerStoreError, Verifier, damage_of, move_aside, salvage_ids
from agent.state.sqlite_schema import MIGRATIONS

T = TypeVar("T")
log = logging.getLogger("vaktpost.store")


DB_NAME = "vaktpost.db"
PROBE_BYTES = 256 * 1024  # room a probe must find before a store that failed counts as up


class StoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Recovery:
    """A damaged store found at this start, moved aside and replaced by a fresh one."""

    moved_to: Path
    reason: str
    at: float
    next_incident_id: int


class Store:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaktpost-store")
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._probe: asyncio.Task[None] | None = None
        # Write health: False from a write that failed until one succeeds again.
        self.writable = True
        self.last_error = ""
        self.write_failures = 0
        self.settle_seconds = 5.0  # no failed write for this long before it counts as up
        self._failed_at = -math.inf
        self.recovery: Recovery | None = None  # set when this start replaced a damaged store
        self.recovered_at: float | None = None  # the last recovery, kept across restarts

    # -- lifecycle -----------------------------------------------------------
    def open_sync(self, recover: bool = False, verify: Sequence[Verifier] = ()) -> None:
        """Open (creating it if absent); with `recover`, replace a damaged store first.

        Without `recover` (one-shot CLI commands, tests) a damaged store is a
        StoreError: only the daemon, the one writer, may move a store aside.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _discard(self.path.with_name(DB_NAME + ".new"))
            if recover:
                reason = damage_of(self.path, len(MIGRATIONS), verify)
                if reason is not None:
                    self._recover(reason)
            if not self.path.exists():
                self._create({})
            try:
                self._db = self._connect(self.path)
            except sqlite3.DatabaseError as exc:
                if not recover or isinstance(exc, sqlite3.OperationalError):
                    raise
                self._recover(f"migration failed: {exc}")
                self._db = self._connect(self.path)
            row = self._db.execute(
                "SELECT value FROM alert_meta WHERE key='store_recovered_at'"
            ).fetchone()
        except NewerStoreError as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open state store {self.path}: {exc}") from exc
        self.recovered_at = float(row[0]) if row else None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed step must survive power loss
            db.execute("PRAGMA busy_timeout=5000")
            migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _create(self, meta: dict[str, str]) -> None:
        """A fresh store, migrated under a temporary name and renamed into place.

        So a vaktpost.db always holds a schema: one without any (emptied, or
        truncated to nothing) is damage, never mistaken for a first start.
        """
        tmp = self.path.with_name(DB_NAME + ".new")
        _discard(tmp)
        db = self._connect(tmp)
        try:
            db.executemany(
                "INSERT OR REPLACE INTO alert_meta(key, value) VALUES (?, ?)", meta.items()
            )
        finally:
            db.close()  # checkpoints and removes the -wal: the file alone is the store
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _recover(self, reason: str) -> None:
        now = time.time()
        ids = salvage_ids(self.path)
        # Ids continue above every id the damaged file still shows, and above the
        # current Unix time: rows it no longer shows may have used higher ones.
        next_incident = max(ids["incident"] + 1, int(now))
        moved = move_aside(self.path, now)
        self._create(
            {
                "next_incident_id": str(next_incident),
                "next_silence_id": str(ids["silence"] + 1),
                "store_recovered_at": repr(now),
                "store_recovered_from": str(moved),
            }
        )
        self.recovery = Recovery(moved, reason, now, next_incident)
        log.error(
            "state store damaged: moved aside, monitoring continues on a fresh store",
            extra={
                "store": str(self.path),
                "moved_to": str(moved),
                "reason": reason,
                "next_incident_id": next_incident,
            },
        )

    async def open(self, recover: bool = False, verify: Sequence[Verifier] = ()) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(self.open_sync, recover, verify)
        )

    def close_sync(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        await asyncio.get_running_loop().run_in_executor(self._executor, self.close_sync)
        self._executor.shutdown(wait=True)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    # -- running work ----------------------------------------------------------
    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn in one transaction (BEGIN IMMEDIATE .. COMMIT, ROLLBACK on error).

        All or nothing: when fn or the COMMIT fails (disk full ...), nothing of
        fn's writes stays. A failure of the store itself marks it not writable
        until a probe write succeeds (probe_sync).
        """
        with self._lock:
            if self._db is None:
                raise StoreError("store is closed")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                out = fn(db)
                db.execute("COMMIT")
            except BaseException as exc:
                # SQLite may already have rolled back (SQLITE_FULL, IOERR): a second
                # ROLLBACK would raise and hide the real error.
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if is_store_failure(exc):
                    self._failed(exc)
                raise
            return out

    def _failed(self, exc: BaseException) -> None:
        self.write_failures += 1
        self._failed_at = time.monotonic()
        if self.writable:
            log.error("state store cannot write", extra={"error": str(exc)})
        self.writable = False
        self.last_error = str(exc)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call_sync, fn)

    # -- write health ------------------------------------------------------------
    def probe_sync(self) -> None:
        """A probe write: the only way `writable` turns true again after a failure.

        Up, a tiny write every few seconds notices a full disk with no other
        traffic. Down, the store counts as up again only once no write failed
        for `settle_seconds` and a write of PROBE_BYTES commits: near a full
        disk SQLite reuses the WAL space failed writes allocated, so small
        writes succeed while the engine's larger ones still fail.
        """
        settled = time.monotonic() - self._failed_at >= self.settle_seconds
        big = not self.writable and settled
        if big:
            with self._lock, contextlib.suppress(sqlite3.Error):
                # Frees the WAL's space when the WAL itself is what filled the disk.
                if self._db is not None:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._write_probe(PROBE_BYTES if big else 0)
        if big and not self.writable:
            self.writable = True
            log.warning("state store writes again", extra={"failed_writes": self.write_failures})
            self._write_probe(0)  # the big row's pages go back to the free list

    def _write_probe(self, size: int) -> None:
        value = repr(time.time())
        sql = "INSERT OR REPLACE INTO alert_meta(key, value) VALUES ('store_probe', ?)"
        if size:
            sql = (
                "INSERT OR REPLACE INTO alert_meta(key, value) VALUES ('store_probe', zeroblob(?))"
            )
        arg: object = size or value
        self.call_sync(lambda db: db.execute(sql, (arg,)))

    def start_probe(self, every: float = 5.0, every_down: float = 1.0) -> None:
        async def forever() -> None:
            loop = asyncio.get_running_loop()
            while True:
                await asyncio.sleep(every if self.writable else every_down)
                with contextlib.suppress(Exception):  # the failure is recorded in _failed
                    await loop.run_in_executor(self._executor, self.probe_sync)

        self._probe = asyncio.create_task(forever(), name="store-probe")

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

    async def load_results(self) -> dict[str, dict[str, Any]]:
        return await asyncio.to_thread(self.load_results_sync)

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

    def update_state_sync(self, check: str, key: str, change: Callable[[Any], Any]) -> Any:
        def step(db: sqlite3.Connection) -> Any:
            row = db.execute(
                "SELECT value FROM check_state WHERE check_name=? AND key=?", (check, key)
            ).fetchone()
            value = change(json.loads(row[0]) if row else None)
            db.execute(
                "INSERT INTO check_state(check_name, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT(check_name, key) DO UPDATE SET value=excluded.value",
                (check, key, json.dumps(value)),
            )
            return value

        return self.call_sync(step)

    async def update_state(self, check: str, key: str, change: Callable[[Any], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self.update_state_sync, check, key, change
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
        raise NewerStoreError(
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


def is_store_failure(exc: BaseException) -> bool:
    """The store's own trouble (full, I/O, locked, damaged), not a caller's bug."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return False
    return isinstance(exc, sqlite3.DatabaseError | OSError)


def _discard(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
