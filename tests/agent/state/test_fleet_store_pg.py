"""The PostgreSQL store's own behaviour beyond the contract: migrations under an
advisory lock, the database's clock, a password that is never shown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.state.postgres import (
    MIGRATIONS,
    PostgresStore,
    redacted,
    schema_version,
)
from agent.state.postgres_errors import PostgresStoreError
from tests.agent.state.pg_fixtures import PgServer


async def test_three_agents_starting_together_migrate_once(pg_server: PgServer) -> None:
    dsn = await asyncio.to_thread(pg_server.new_database)
    agents = [PostgresStore(dsn, agent=f"srv-{i}") for i in range(3)]
    try:
        await asyncio.gather(*(a.open() for a in agents))
        rows = await asyncio.to_thread(
            pg_server.psql,
            "SELECT version FROM vaktpost_schema ORDER BY 1",
            dsn.rsplit("/")[-1].split("?")[0],
        )
        assert rows.split() == [str(n) for n in range(1, len(MIGRATIONS) + 1)]
        async with agents[0]._pool.connection() as conn:
            assert await schema_version(conn) == len(MIGRATIONS)
    finally:
        await asyncio.gather(*(a.close() for a in agents))


async def test_a_newer_schema_is_refused_with_one_line(pg_server: PgServer) -> None:
    dsn = await asyncio.to_thread(pg_server.new_database)
    store = PostgresStore(dsn)
    await store.open()
    await store.close()
    db = dsn.rsplit("/")[-1].split("?")[0]
    await asyncio.to_thread(pg_server.psql, "INSERT INTO vaktpost_schema(version) VALUES (99)", db)
    with pytest.raises(PostgresStoreError, match=r"schema version 99 is newer") as caught:
        await PostgresStore(dsn).open()
    assert "\n" not in str(caught.value)


async def test_lease_times_are_the_database_clock(pg_server: PgServer) -> None:
    dsn = await asyncio.to_thread(pg_server.new_database)
    store = PostgresStore(dsn, agent="srv-a")
    await store.open()
    try:
        before = await store.now()
        assert await store.take_lease(30.0) == 1
        _, holder, _ = await store.heartbeat("test", "hash", 0, 30.0)
        assert holder is not None and holder["agent"] == "srv-a" and holder["live"]
        assert before + 29 < holder["expires_at"] < before + 32
    finally:
        await store.close()


async def test_an_unreachable_store_is_a_one_line_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.helpers import free_port

    dsn = f"postgresql://vaktpost:hunter2@127.0.0.1:{free_port()}/vaktpost?connect_timeout=1"
    store = PostgresStore(dsn, password="s3cret-from-file", timeout=2.0)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PostgresStoreError) as caught:
        await store.open()
    message = str(caught.value)
    assert "127.0.0.1" in message and "\n" not in message
    for secret in ("hunter2", "s3cret-from-file"):
        assert secret not in message and secret not in caplog.text
    assert "hunter2" not in redacted(dsn)
