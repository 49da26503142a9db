"""History in the SQLite store (the HistoryStore of agent/state/interface.py):
check status changes, the audit trail, restore tests, incident timelines with
their deliveries, and pruning past `agent.history`.

Incidents and their events are written by the alerting store
(agent/state/sqlite_alerting.py); this module reads them back for the timeline,
the daily availability and the monthly report, and prunes them with the rest.
A fleet keeps the same history in PostgreSQL (agent/state/pg_history.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Any

from agent.state.interface import (
    DELIVERY_COLUMNS,
    IncidentSpan,
    ack_entry,
    delivery_event,
    in_time_order,
)
from agent.state.sqlite import Store


class HistoryStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writes ----------------------------------------------------------------------
    async def record_changes(self, rows: list[tuple[str, float, str, str]]) -> None:
        """(check, at, status, message) of each status change, in order."""
        if rows:
            await self.store.call(
                lambda db: db.executemany(
                    "INSERT INTO check_history(check_name, at, status, message)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
            )

    async def record_restore_tests(self, rows: list[tuple[str, float, bool, float | None]]) -> None:
        """(check, at, passed, seconds) of restore tests; one row per test, whoever saw it."""
        if rows:
            await self.store.call(
                lambda db: db.executemany(
                    "INSERT OR IGNORE INTO restore_tests(check_name, at, ok, seconds)"
                    " VALUES (?, ?, ?, ?)",
                    [(c, at, 1 if ok else 0, s) for c, at, ok, s in rows],
                )
            )

    async def audit(self, at: float, actor: str, action: str, target: str, detail: str) -> None:
        row = (at, actor, action, target, detail)
        await self.store.call(
            lambda db: db.execute(
                "INSERT INTO audit_log(at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                row,
            )
        )

    async def prune(self, before: float) -> dict[str, int]:
        """Drop everything that ended before `before`; open incidents always stay."""
        return await self.store.call(lambda db: prune_sync(db, before))

    # -- reads ------------------------------------------------------------------------
    async def last_statuses(self, checks: Collection[str] | None = None) -> dict[str, str]:
        """The last recorded status of each check (so a restart records no false change)."""
        rows = await self.store.call(
            lambda db: db.execute(
                "SELECT check_name, status FROM check_history WHERE id IN"
                " (SELECT MAX(id) FROM check_history GROUP BY check_name)"
            ).fetchall()
        )
        return {r[0]: r[1] for r in rows if checks is None or r[0] in checks}

    async def check_changes(
        self, check: str | None, since: float, until: float
    ) -> list[dict[str, Any]]:
        return await self.store.call(lambda db: check_changes_sync(db, check, since, until))

    async def audit_trail(self, since: float, limit: int = 500) -> list[dict[str, Any]]:
        rows = await self.store.call(
            lambda db: db.execute(
                "SELECT at, actor, action, target, detail FROM audit_log WHERE at >= ?"
                " ORDER BY id DESC LIMIT ?",
                (since, limit),
            ).fetchall()
        )
        keys = ("at", "actor", "action", "target", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def spans(self, since: float, until: float) -> list[IncidentSpan]:
        return await self.store.call(lambda db: spans_sync(db, since, until))

    async def acks(self, since: float) -> list[dict[str, Any]]:
        return await self.store.call(lambda db: acks_sync(db, since))

    async def restore_tests(self, since: float, until: float) -> list[dict[str, Any]]:
        return await self.store.call(lambda db: restore_tests_sync(db, since, until))


def check_changes_sync(
    db: sqlite3.Connection, check: str | None, since: float, until: float
) -> list[dict[str, Any]]:
    """Changes in [since, until), plus the last one before `since` (the state at start)."""
    names = [check] if check else [r[0] for r in db.execute(
        "SELECT DISTINCT check_name FROM check_history ORDER BY check_name")]  # fmt: skip
    out: list[dict[str, Any]] = []
    for name in names:
        before = db.execute(
            "SELECT at, status, message FROM check_history WHERE check_name=? AND at < ?"
            " ORDER BY at DESC, id DESC LIMIT 1",
            (name, since),
        ).fetchall()
        inside = db.execute(
            "SELECT at, status, message FROM check_history WHERE check_name=? AND at >= ?"
            " AND at < ? ORDER BY at, id",
            (name, since, until),
        ).fetchall()
        for at, status, message in [*before, *inside]:
            out.append({"check": name, "at": at, "status": status, "message": message})
    return out


def timeline_sync(db: sqlite3.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The incident's events and each delivery (channel and outcome), in time order."""
    events: list[dict[str, Any]] = [
        {"at": r[0], "kind": r[1], "step": r[2], "channels": json.loads(r[3]), "message": r[4]}
        for r in db.execute(
            "SELECT at, kind, step, channels, message FROM incident_events"
            " WHERE incident_id=? ORDER BY id",
            (incident_id,),
        )
    ]
    events += [
        delivery_event(*row)
        for row in db.execute(
            f"SELECT {DELIVERY_COLUMNS} FROM outbox WHERE incident_id=? ORDER BY id",
            (incident_id,),
        )
    ]
    return in_time_order(events)


def spans_sync(db: sqlite3.Connection, since: float, until: float) -> list[IncidentSpan]:
    rows = db.execute(
        "SELECT id, department, system, started_at, resolved_at, data FROM incidents"
        " WHERE started_at < ? AND (resolved_at IS NULL OR resolved_at >= ?) ORDER BY id",
        (until, since),
    ).fetchall()
    acks = dict(
        db.execute(
            "SELECT incident_id, MIN(at) FROM incident_events WHERE kind='acknowledged'"
            " GROUP BY incident_id"
        ).fetchall()
    )
    return [
        IncidentSpan(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), acks.get(r[0])) for r in rows
    ]


def prune_sync(db: sqlite3.Connection, before: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    old = "SELECT id FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < ?"
    counts["incident_events"] = db.execute(
        f"DELETE FROM incident_events WHERE incident_id IN ({old})", (before,)
    ).rowcount
    # Only finished deliveries: a pending row is still owed to someone.
    counts["outbox"] = db.execute(
        f"DELETE FROM outbox WHERE state != 'pending' AND incident_id IN ({old})", (before,)
    ).rowcount
    counts["incidents"] = db.execute(
        "DELETE FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < ?", (before,)
    ).rowcount
    # Keep each check's last change before the cut: it is the state the window starts in.
    counts["check_history"] = db.execute(
        "DELETE FROM check_history WHERE at < ? AND id NOT IN"
        " (SELECT MAX(id) FROM check_history WHERE at < ? GROUP BY check_name)",
        (before, before),
    ).rowcount
    counts["audit_log"] = db.execute("DELETE FROM audit_log WHERE at < ?", (before,)).rowcount
    counts["restore_tests"] = db.execute(
        "DELETE FROM restore_tests WHERE at < ?", (before,)
    ).rowcount
    return counts


def acks_sync(db: sqlite3.Connection, since: float) -> list[dict[str, Any]]:
    """Acknowledgements as audit entries."""
    return [
        ack_entry(incident_id, at, message)
        for incident_id, at, message in db.execute(
            "SELECT incident_id, at, message FROM incident_events"
            " WHERE kind='acknowledged' AND at >= ? ORDER BY id",
            (since,),
        )
    ]


def restore_tests_sync(db: sqlite3.Connection, since: float, until: float) -> list[dict[str, Any]]:
    """Restore tests in [since, until), oldest first."""
    return [
        {"check": c, "at": at, "ok": bool(ok), "seconds": seconds}
        for c, at, ok, seconds in db.execute(
            "SELECT check_name, at, ok, seconds FROM restore_tests"
            " WHERE at >= ? AND at < ? ORDER BY at, id",
            (since, until),
        )
    ]
