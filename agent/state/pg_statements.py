"""The one-statement helpers every PostgreSQL module of the store runs through
PostgresStore.run: a helper named in ONE_STATEMENT is sent on its own on an
autocommit connection, since BEGIN and COMMIT around a single statement were two
more round trips on every poll of the fleet.

Free of psycopg at import: agent/state/pg_requests.py is imported by every agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def fetch(conn: AsyncConnection[Any], sql: str, args: Any) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql, args)
    return await cur.fetchall() if cur.description else []


async def fetch_value(conn: AsyncConnection[Any], sql: str, args: Any) -> Any:
    rows = await fetch(conn, sql, args)
    return rows[0][0]


async def execute(conn: AsyncConnection[Any], sql: str, args: Any) -> None:
    await conn.execute(sql, args)


ONE_STATEMENT = frozenset({fetch, fetch_value, execute})
