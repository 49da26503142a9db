"""Store implementations for the contract suite: every one passes the same scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.state.sqlite import Store
from agent.state.sqlite_alerting import IncidentStore


@dataclass
class Stores:
    """One opened implementation: its result/check-state side and its alerting side."""

    results: Any
    alerting: Any
    reopen: Callable[[], Any]  # close and open again on the same data (a restart)


async def _sqlite(tmp_path: Path) -> Stores:
    store = Store(tmp_path / "state")
    await store.open()
    stores = Stores(store, IncidentStore(store), lambda: None)

    async def reopen() -> None:
        await stores.results.close()
        fresh = Store(tmp_path / "state")
        await fresh.open()
        stores.results, stores.alerting = fresh, IncidentStore(fresh)

    stores.reopen = reopen
    return stores


IMPLEMENTATIONS: dict[str, Callable[[Path], Any]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    opened: Stores = await IMPLEMENTATIONS[request.param](tmp_path)
    try:
        yield opened
    finally:
        await opened.results.close()
