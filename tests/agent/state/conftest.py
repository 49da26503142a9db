"""Store implementations for the contract suite: every one passes the same scenarios."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.state.fleet import LocalFleet
from agent.state.sqlite import Store
from agent.state.sqlite_alerting import IncidentStore
from agent.state.sqlite_history import HistoryStore
from tests.agent.state.pg_fixtures import PgServer, pg_server

__all__ = ["Stores", "pg_server"]


@dataclass
class Stores:
    """One opened implementation: its result/check-state side and its alerting side."""

    results: Any
    alerting: Any
    reopen: Callable[[], Any]  # close and open again on the same data (a restart)
    fleet: Any = None  # agent/state/fleet.py FleetStore
    # Another agent on the same data (its own connections), or None for an embedded
    # store, where one agent is the whole fleet.
    peer: Callable[[], Any] | None = None
    closers: list[Any] = field(default_factory=list)
    history: Any = None  # agent/state/interface.py HistoryStore, on the same data


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    store = Store(tmp_path / "state")
    await store.open()
    alerting = IncidentStore(store)
    stores = Stores(
        store, alerting, lambda: None, LocalFleet(alerting), history=HistoryStore(store)
    )

    async def reopen() -> None:
        await stores.results.close()
        fresh = Store(tmp_path / "state")
        await fresh.open()
        stores.results, stores.alerting = fresh, IncidentStore(fresh)
        stores.fleet = LocalFleet(stores.alerting)
        stores.history = HistoryStore(fresh)

    stores.reopen = reopen
    return stores


async def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    from agent.state.pg_history import PostgresHistory
    from agent.state.postgres import PostgresStore

    server: PgServer = request.getfixturevalue("pg_server")
    dsn = await asyncio.to_thread(server.new_database)

    async def opened(agent: str) -> PostgresStore:
        store = PostgresStore(dsn, agent=agent)
        await store.open()
        return store

    first = await opened("srv-a")
    stores = Stores(first, first, lambda: None, first, history=PostgresHistory(first))

    async def reopen() -> None:
        await stores.results.close()
        fresh = await opened("srv-a")
        stores.results = stores.alerting = stores.fleet = fresh
        stores.history = PostgresHistory(fresh)

    async def peer() -> PostgresStore:
        other = await opened(f"srv-peer{len(stores.closers) + 1}")
        stores.closers.append(other)
        return other

    stores.reopen, stores.peer = reopen, peer
    return stores


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest, Path], Any]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


# Those several agents share (a fleet's store): scenarios between agents run on these
# alone, instead of skipping on an embedded store that belongs to one agent.
SHARED = ("postgresql",)


async def _opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    opened: Stores = await IMPLEMENTATIONS[request.param](request, tmp_path)
    try:
        yield opened
    finally:
        for other in opened.closers:
            await other.close()
        await opened.results.close()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    async for opened in _opened(request, tmp_path):
        yield opened


@pytest.fixture(params=SHARED)
async def shared_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    async for opened in _opened(request, tmp_path):
        yield opened
