"""Requests queued in the shared store for the engine holder (table `requests`,
migration 4 of agent/state/postgres.py).

A request moves queued -> applying (the holder took it) -> done (its verdict
written), or queued -> cancelled (the asker gave up before any holder took it).
Taking and cancelling are conditional updates on `state`, so exactly one of them
wins: a request the asker cancelled is never applied, and one a holder took is
answered, never cancelled. All times are the database's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.state.interface import dumps
from agent.state.pg_statements import execute as _execute
from agent.state.pg_statements import fetch as _fetch
from agent.state.pg_statements import fetch_value as _fetch_value

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from agent.state.postgres import PostgresStore


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    kind: str
    body: dict[str, Any]
    asked_by: str


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int
    answer: dict[str, Any]


class RequestQueue:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def ask(self, kind: str, body: dict[str, Any], ttl: float) -> int:
        """Queue a request that a holder may take for `ttl` seconds; its id."""

        async def write(conn: AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                "INSERT INTO requests(kind, body, asked_by, expires_at)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING id",
                (kind, dumps(body), self.store.agent, ttl),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

        return int(await self.store.run(write))

    async def verdict(self, request_id: int) -> tuple[str, Verdict | None]:
        """(state, the verdict once done)."""
        rows = await self.store.run(
            _fetch, "SELECT state, status, verdict FROM requests WHERE id=%s", (request_id,)
        )
        if not rows:
            return "gone", None
        state, status, verdict = rows[0]
        if state != "done":
            return str(state), None
        return "done", Verdict(int(status), json.loads(verdict))

    async def cancel(self, request_id: int) -> bool:
        """True if cancelled before any holder took it (then it is never applied)."""
        rows = await self.store.run(
            _fetch,
            "UPDATE requests SET state='cancelled', answered_at=now()"
            " WHERE id=%s AND state='queued' RETURNING id",
            (request_id,),
        )
        return bool(rows)

    async def take(self, limit: int = 50) -> list[Request]:
        """The holder takes the queued requests still wanted, oldest first; those past
        their time are cancelled (their askers have answered 503 already)."""

        # Most looks find nothing: one read on the partial index, outside a transaction
        # (BEGIN and COMMIT around it were two more round trips twice a second).
        queued = await self.store.run(
            _fetch_value, "SELECT EXISTS (SELECT 1 FROM requests WHERE state='queued')", ()
        )
        if not queued:
            return []

        async def write(conn: AsyncConnection[Any]) -> list[Request]:
            await conn.execute(
                "UPDATE requests SET state='cancelled', answered_at=now()"
                " WHERE state='queued' AND expires_at <= now()"
            )
            cur = await conn.execute(
                "UPDATE requests SET state='applying', answered_by=%s WHERE id IN"
                " (SELECT id FROM requests WHERE state='queued' ORDER BY id LIMIT %s"
                " FOR UPDATE SKIP LOCKED) RETURNING id, kind, body, asked_by",
                (self.store.instance, limit),
            )
            rows = await cur.fetchall()
            return sorted(
                (Request(int(r[0]), r[1], json.loads(r[2]), r[3]) for r in rows),
                key=lambda r: r.id,
            )

        out: list[Request] = await self.store.run(write)
        return out

    async def answer(self, request_id: int, verdict: Verdict) -> None:
        await self.store.run(
            _execute,
            "UPDATE requests SET state='done', status=%s, verdict=%s, answered_at=now()"
            " WHERE id=%s",
            (verdict.status, dumps(verdict.answer), request_id),
        )

    async def release(self, request_id: int) -> None:
        """Back to the queue, for the next holder: this one lost the lease mid-way."""
        await self.store.run(
            _execute,
            "UPDATE requests SET state='queued', answered_by=NULL WHERE id=%s AND state='applying'",
            (request_id,),
        )

    async def prune(self) -> None:
        """Requests are kept a day, for a look after the fact (one a holder died while
        applying stays 'applying': its asker has answered 503)."""
        await self.store.run(
            _execute, "DELETE FROM requests WHERE created_at < now() - interval '1 day'", ()
        )

    async def open_incident(self, incident_id: int) -> dict[str, Any] | None:
        """An open incident as last committed by the holder, for pages at a non-holder."""
        rows = await self.store.run(
            _fetch,
            "SELECT data FROM incidents WHERE id=%s AND resolved_at IS NULL",
            (incident_id,),
        )
        return json.loads(rows[0][0]) if rows else None
