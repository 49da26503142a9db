"""The alerting half of the SQLite store: the engine's state and the outbox
(agent/state/interface.py AlertingStore).

`persist` writes everything one engine call changed — check tracks, incidents,
their timeline and the notifications they cause — in one transaction. The
outbox worker only ever reads committed rows, so nothing is sent before the
state change that caused it is durable.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

from agent.state.interface import HeldOutcomes, OutboxRow, OutboxUpdate, OutcomeRows, dumps
from agent.state.sqlite import Store, is_store_failure
from agent.state.sqlite_history import timeline_sync
from alerting.model import CheckTrack, EngineState, Incident, Outcome, Silence


def read_state(db: sqlite3.Connection) -> EngineState:
    """The engine's state as committed; raises on a row that does not load.

    Also the store's check at open (a Verifier): a row that cannot be loaded
    makes the store damaged there, before monitoring starts, not at load time.
    """
    state = EngineState()
    for (data,) in db.execute("SELECT data FROM alert_checks"):
        track = CheckTrack.from_json(json.loads(data))
        state.checks[track.name] = track
    for (data,) in db.execute("SELECT data FROM incidents WHERE resolved_at IS NULL"):
        incident = Incident.from_json(json.loads(data))
        state.incidents[incident.id] = incident
    for (data,) in db.execute("SELECT data FROM silences"):
        silence = Silence.from_json(json.loads(data))
        state.silences[silence.id] = silence
    meta = dict(db.execute("SELECT key, value FROM alert_meta").fetchall())
    top = db.execute("SELECT COALESCE(MAX(id), 0) FROM incidents").fetchone()[0]
    state.next_incident_id = max(int(meta.get("next_incident_id", 1)), top + 1)
    top = db.execute("SELECT COALESCE(MAX(id), 0) FROM silences").fetchone()[0]
    state.next_silence_id = max(int(meta.get("next_silence_id", 1)), top + 1)
    return state


class IncidentStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Outcomes of sends the store could not record (disk full): kept here and
        # written with the next write, so a delivered row is not sent again meanwhile.
        self._held = HeldOutcomes()  # outbox outcomes the store could not write yet

    # -- engine state ----------------------------------------------------------------
    async def load_state(self) -> EngineState:
        return await asyncio.to_thread(self.load_state_sync)

    def load_state_sync(self) -> EngineState:
        return self.store.call_sync(read_state)

    async def persist(self, out: Outcome, state: EngineState) -> None:
        """One transaction for one (or several merged) engine outcomes."""
        rows = OutcomeRows.of(out, state)

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO alert_checks(check_name, data) VALUES (?, ?)"
                " ON CONFLICT(check_name) DO UPDATE SET data=excluded.data",
                rows.checks,
            )
            db.executemany(_UPSERT_INCIDENT, rows.incidents)
            db.executemany(_INSERT_EVENT, rows.events)
            db.executemany(_INSERT_NOTE, rows.notes)
            db.executemany("INSERT OR REPLACE INTO alert_meta(key, value) VALUES (?, ?)", rows.meta)

        await self.store.call(write)

    async def save_silence(self, silence: Silence, state: EngineState) -> None:
        row = (silence.id, silence.ends_at, dumps(silence.to_json()))
        meta = ("next_silence_id", str(state.next_silence_id))

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO silences(id, ends_at, data) VALUES (?, ?, ?)", row)
            db.execute("INSERT OR REPLACE INTO alert_meta(key, value) VALUES (?, ?)", meta)

        await self.store.call(write)

    async def silences(self) -> list[Silence]:
        rows = await self.store.call(
            lambda db: db.execute("SELECT data FROM silences ORDER BY id").fetchall()
        )
        return [Silence.from_json(json.loads(r[0])) for r in rows]

    async def incidents(self, state: str | None, limit: int = 200) -> list[dict[str, Any]]:
        where = {"open": "WHERE resolved_at IS NULL", "resolved": "WHERE resolved_at IS NOT NULL"}
        sql = f"SELECT data FROM incidents {where.get(state or '', '')} ORDER BY id DESC LIMIT ?"
        rows = await self.store.call(lambda db: db.execute(sql, (limit,)).fetchall())
        return [json.loads(r[0]) for r in rows]

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        row = await self.store.call(
            lambda db: db.execute(
                "SELECT data FROM incidents WHERE id=?", (incident_id,)
            ).fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    async def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        return await self.store.call(lambda db: timeline_sync(db, incident_id))

    # -- outbox ------------------------------------------------------------------------
    async def head(self, channel: str, limit: int) -> list[OutboxRow]:
        """The oldest pending rows of a channel, in order (due or not)."""
        await self._held.flush(self._write_outcomes, is_store_failure)
        rows = await self.store.call(
            lambda db: db.execute(
                "SELECT id, dedup_key, channel, incident_id, kind, payload, attempts,"
                " next_attempt_at, created_at FROM outbox"
                " WHERE state='pending' AND channel=? ORDER BY id LIMIT ?",
                (channel, limit + len(self._held.updates)),
            ).fetchall()
        )
        return self._held.overlay(
            (OutboxRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])
             for r in rows),
            limit,
        )  # fmt: skip

    async def record(self, updates: list[OutboxUpdate]) -> None:
        """Outcomes of one batch of sends, and the fallback rows they cause, at once
        (held in memory while the store cannot write: interface.HeldOutcomes)."""
        self._held.add(updates)
        await self._held.flush(self._write_outcomes, is_store_failure)

    async def _write_outcomes(self, batch: list[OutboxUpdate]) -> None:
        def write(db: sqlite3.Connection) -> None:
            for u in batch:
                db.execute(
                    "UPDATE outbox SET state=?, attempts=?, next_attempt_at=?, last_error=?,"
                    " done_at=? WHERE id=?",
                    (u.state, u.attempts, u.next_attempt_at, u.error, u.done_at, u.row.id),
                )
                for channel in u.fallbacks:
                    db.execute(
                        _INSERT_NOTE,
                        (
                            u.row.dedup_key,
                            channel,
                            u.row.incident_id,
                            u.row.kind,
                            u.row.created_at,
                            dumps(u.row.payload),
                            u.done_at or u.row.created_at,
                        ),
                    )

        await self.store.call(write)

    async def pending_counts(self) -> dict[str, int]:
        rows = await self.store.call(
            lambda db: db.execute(
                "SELECT channel, COUNT(*) FROM outbox WHERE state='pending' GROUP BY channel"
            ).fetchall()
        )
        return self._held.adjust({r[0]: r[1] for r in rows})

    async def deliveries(self) -> list[tuple[str, str, str]]:
        """(dedup_key, channel, state) of every outbox row, oldest first (tests, status)."""
        rows = await self.store.call(
            lambda db: db.execute(
                "SELECT dedup_key, channel, state FROM outbox ORDER BY id"
            ).fetchall()
        )
        return [(r[0], r[1], r[2]) for r in rows]


_UPSERT_INCIDENT = (
    "INSERT INTO incidents(id, department, system, status, started_at, resolved_at, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status=excluded.status,"
    " resolved_at=excluded.resolved_at, data=excluded.data"
)
_INSERT_EVENT = (
    "INSERT INTO incident_events(incident_id, at, kind, step, channels, message)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
# A (dedup key, channel) pair is queued once: a re-run of the same step cannot double it.
_INSERT_NOTE = (
    "INSERT OR IGNORE INTO outbox(dedup_key, channel, incident_id, kind, created_at, payload,"
    " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

__all__ = ["IncidentStore", "OutboxRow", "OutboxUpdate", "read_state"]
