"""History in the shared store of a fleet (the HistoryStore of agent/state/interface.py):
every agent's status changes, the audit trail and restore tests in one place
(tables of migration 5 of agent/state/postgres.py), and the incidents the engine
holder wrote, read back for availability, the console and the monthly report.

Each agent records the changes of the checks it runs, so together they are the
whole fleet's history. Pruning is the engine holder's alone: the deletes run in
the same transaction as a look at the lease on the database's clock, so the other
agents prune nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from psycopg import AsyncConnection

from agent.state.interface import IncidentSpan, ack_entry
from agent.state.pg_statements import fetch as _fetch
from agent.state.postgres import ENGINE, PostgresStore

Conn = AsyncConnection[Any]


class PostgresHistory:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    # -- writes ----------------------------------------------------------------------
    async def record_changes(self, rows: list[tuple[str, float, str, str]]) -> None:
        if rows:
            await self.store.run(
                _executemany,
                "INSERT INTO check_history(check_name, at, status, message)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )

    async def record_restore_tests(self, rows: list[tuple[str, float, bool, float | None]]) -> None:
        if rows:
            await self.store.run(
                _executemany,
                "INSERT INTO restore_tests(check_name, at, ok, seconds) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (check_name, at) DO NOTHING",
                [(c, at, 1 if ok else 0, s) for c, at, ok, s in rows],
            )

    async def audit(self, at: float, actor: str, action: str, target: str, detail: str) -> None:
        await self.store.run(
            _executemany,
            "INSERT INTO audit_log(at, actor, action, target, detail) VALUES (%s, %s, %s, %s, %s)",
            [(at, actor, action, target, detail)],
        )

    async def prune(self, before: float) -> dict[str, int]:
        """Drop what ended before `before`, while this process holds the engine lease."""
        counts: dict[str, int] = await self.store.run(_prune, before, self.store.instance)
        return counts

    # -- reads ------------------------------------------------------------------------
    async def last_statuses(self, checks: Collection[str] | None = None) -> dict[str, str]:
        where, args = (
            ("", ()) if checks is None else (" WHERE check_name = ANY(%s)", (list(checks),))
        )
        rows = await self.store.run(
            _fetch,
            f"SELECT DISTINCT ON (check_name) check_name, status FROM check_history{where}"
            " ORDER BY check_name, id DESC",
            args,
        )
        return {r[0]: r[1] for r in rows}

    async def check_changes(
        self, check: str | None, since: float, until: float
    ) -> list[dict[str, Any]]:
        one, args = ("", ()) if check is None else (" AND check_name = %s", (check,))
        before = await self.store.run(
            _fetch,
            "SELECT DISTINCT ON (check_name) check_name, at, status, message FROM check_history"
            f" WHERE at < %s{one} ORDER BY check_name, at DESC, id DESC",
            (since, *args),
        )
        inside = await self.store.run(
            _fetch,
            "SELECT check_name, at, status, message FROM check_history"
            f" WHERE at >= %s AND at < %s{one} ORDER BY check_name, at, id",
            (since, until, *args),
        )
        # Each check's state at `since` first, then its changes: ordered by name, then
        # "before" ahead of "inside" (0 < 1), each in time order as read.
        rows = sorted(
            [(r[0], 0, i, r) for i, r in enumerate(before)]
            + [(r[0], 1, i, r) for i, r in enumerate(inside)]
        )
        return [{"check": r[0], "at": r[1], "status": r[2], "message": r[3]} for *_, r in rows]

    async def audit_trail(self, since: float, limit: int = 500) -> list[dict[str, Any]]:
        rows = await self.store.run(
            _fetch,
            "SELECT at, actor, action, target, detail FROM audit_log WHERE at >= %s"
            " ORDER BY id DESC LIMIT %s",
            (since, limit),
        )
        keys = ("at", "actor", "action", "target", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def spans(self, since: float, until: float) -> list[IncidentSpan]:
        rows = await self.store.run(
            _fetch,
            "SELECT i.id, i.department, i.system, i.started_at, i.resolved_at, i.data,"
            " (SELECT MIN(e.at) FROM incident_events e WHERE e.incident_id = i.id"
            "  AND e.kind = 'acknowledged') FROM incidents i"
            " WHERE i.started_at < %s AND (i.resolved_at IS NULL OR i.resolved_at >= %s)"
            " ORDER BY i.id",
            (until, since),
        )
        return [
            IncidentSpan(int(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows
        ]

    async def acks(self, since: float) -> list[dict[str, Any]]:
        rows = await self.store.run(
            _fetch,
            "SELECT incident_id, at, message FROM incident_events"
            " WHERE kind = 'acknowledged' AND at >= %s ORDER BY id",
            (since,),
        )
        return [ack_entry(int(r[0]), r[1], r[2]) for r in rows]

    async def restore_tests(self, since: float, until: float) -> list[dict[str, Any]]:
        rows = await self.store.run(
            _fetch,
            "SELECT check_name, at, ok, seconds FROM restore_tests"
            " WHERE at >= %s AND at < %s ORDER BY at, id",
            (since, until),
        )
        return [{"check": r[0], "at": r[1], "ok": bool(r[2]), "seconds": r[3]} for r in rows]


async def _prune(conn: Conn, before: float, instance: str) -> dict[str, int]:
    # No FOR SHARE: it would hold up the holder's own renewal for the whole prune. A
    # prune of a holder deposed meanwhile deletes only what the next one would.
    cur = await conn.execute(
        "SELECT 1 FROM leases WHERE name = %s AND holder = %s AND expires_at > now()",
        (ENGINE, instance),
    )
    if await cur.fetchone() is None:
        return {}
    old = "SELECT id FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < %s"
    statements = {
        "incident_events": (f"DELETE FROM incident_events WHERE incident_id IN ({old})", (before,)),
        # Only finished deliveries: a pending row is still owed to someone.
        "outbox": (
            f"DELETE FROM outbox WHERE state <> 'pending' AND incident_id IN ({old})",
            (before,),
        ),
        "incidents": (
            "DELETE FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < %s",
            (before,),
        ),
        # Keep each check's last change before the cut: it is the state the window starts in.
        "check_history": (
            "DELETE FROM check_history WHERE at < %s AND id NOT IN"
            " (SELECT MAX(id) FROM check_history WHERE at < %s GROUP BY check_name)",
            (before, before),
        ),
        "audit_log": ("DELETE FROM audit_log WHERE at < %s", (before,)),
        "restore_tests": ("DELETE FROM restore_tests WHERE at < %s", (before,)),
    }
    counts = {}
    for table, (sql, args) in statements.items():
        cur = await conn.execute(sql, args)
        counts[table] = cur.rowcount
    return counts


async def _executemany(conn: Conn, sql: str, rows: list[Any]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(sql, rows)
