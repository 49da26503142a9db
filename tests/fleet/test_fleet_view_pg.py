"""A fleet agent's view of the others' results, on a real PostgreSQL: read when a
request asks (at most every READ_EVERY seconds), never on its own, and fed by the
engine holder's own reads instead of a second read of the same rows.

Before, every agent read every other agent's results every 2 s whether anyone
looked or not: most of the fleet's CPU beyond probing in bench/fleet.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.config import Config
from agent.configload import load_config_text
from agent.fleet_component import READ_EVERY, FleetComponent
from agent.results import ResultBook
from agent.state.postgres import PostgresStore
from core.status import Status
from tests.agent.state.pg_fixtures import PgServer

CONFIG = """
agent: {name: srv-b, language: en}
channels: {log: {type: log, default: true}}
checks:
  - {name: web, type: tcp, host: 127.0.0.1, port: 1}
  - {name: dns, type: tcp, host: 127.0.0.1, port: 2}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ViewHost:
    """What the fleet view uses of its agent: the config, the book, the shared store."""

    config: Config
    shared_store: PostgresStore
    book: ResultBook = field(default_factory=ResultBook)


@dataclass
class Fleet:
    writer: PostgresStore  # srv-a, which runs the checks
    reader: PostgresStore  # srv-b's store, whose view is under test
    reads: list[tuple[Any, ...]]  # every fleet_results call srv-b made
    view: FleetComponent
    clock: Clock


@pytest.fixture
async def fleet(pg_server: PgServer) -> AsyncIterator[Fleet]:
    dsn = await asyncio.to_thread(pg_server.new_database)
    writer, reader = PostgresStore(dsn, agent="srv-a"), PostgresStore(dsn, agent="srv-b")
    await writer.open()
    await reader.open()
    reads: list[tuple[Any, ...]] = []
    real = reader.fleet_results

    async def counted(seq: int, exclude: str) -> tuple[int, list[dict[str, Any]]]:
        reads.append((seq, exclude))
        return await real(seq, exclude)

    reader.fleet_results = counted  # type: ignore[method-assign,assignment]
    config = load_config_text(CONFIG, "<test>")
    host = ViewHost(config, reader)
    host.book.configure(config.checks)
    clock = Clock()
    try:
        yield Fleet(writer, reader, reads, FleetComponent(host, monotonic=clock), clock)  # type: ignore[arg-type]
    finally:
        await reader.close()
        await writer.close()


async def ran(store: PostgresStore, name: str, status: str, message: str) -> None:
    result = {
        "status": status,
        "message": message,
        "facts": {"seconds": 0.01},
        "duration_seconds": 0.01,
        "finished_at": 1.0,
    }
    await store.save_results([(name, "tcp", result)])


def shown(view: FleetComponent, name: str) -> tuple[Status, str, str] | None:
    state = view.host.book.states[name]
    if state.result is None:
        return None
    return state.result.status, state.result.message, state.agent


async def test_a_request_brings_the_view_up_to_date_and_nothing_reads_meanwhile(
    fleet: Fleet,
) -> None:
    await ran(fleet.writer, "web", "critical", "refused")
    assert fleet.reads == [], "the view reads on its own, before anyone asked"
    await fleet.view.fresh()
    assert shown(fleet.view, "web") == (Status.CRITICAL, "refused", "srv-a")
    assert len(fleet.reads) == 1

    # A second request within READ_EVERY is answered from what was read.
    await ran(fleet.writer, "web", "ok", "connected")
    fleet.clock.now += READ_EVERY / 2
    await fleet.view.fresh()
    assert len(fleet.reads) == 1
    assert shown(fleet.view, "web") == (Status.CRITICAL, "refused", "srv-a")

    # Later it reads again, only what changed since.
    fleet.clock.now += READ_EVERY
    await fleet.view.fresh()
    assert len(fleet.reads) == 2 and fleet.reads[1][0] > fleet.reads[0][0]
    assert shown(fleet.view, "web") == (Status.OK, "connected", "srv-a")


async def test_concurrent_requests_share_one_read(fleet: Fleet) -> None:
    await ran(fleet.writer, "dns", "warning", "slow")
    await asyncio.gather(*(fleet.view.fresh() for _ in range(20)))
    assert len(fleet.reads) == 1
    assert shown(fleet.view, "dns") == (Status.WARNING, "slow", "srv-a")


async def test_the_holders_rows_feed_the_view_without_a_second_read(fleet: Fleet) -> None:
    """The engine holder hands its rows over (AlertingService.results_listeners): the
    view is up to date, and a later read starts after them."""
    await ran(fleet.writer, "web", "critical", "refused")
    seq, rows = await fleet.reader.fleet_results(0, "srv-b")
    fleet.reads.clear()
    fleet.view.absorb(seq, rows)
    assert shown(fleet.view, "web") == (Status.CRITICAL, "refused", "srv-a")

    await fleet.view.fresh()
    assert len(fleet.reads) == 1 and fleet.reads[0][0] == seq, "read from the start again"


async def test_a_store_that_fails_leaves_the_view_as_it_was(fleet: Fleet) -> None:
    await ran(fleet.writer, "web", "critical", "refused")
    await fleet.view.fresh()
    await fleet.reader.close()  # every read now fails
    fleet.clock.now += READ_EVERY
    await fleet.view.fresh()  # no exception: the store's health is reported elsewhere
    assert shown(fleet.view, "web") == (Status.CRITICAL, "refused", "srv-a")


async def test_results_with_odd_facts_and_text_cross_the_store(fleet: Fleet) -> None:
    """Results cross the store as JSON: facts that JSON cannot say (NaN, infinity) and
    text that needs escaping arrive as they left."""
    result = {
        "status": "warning",
        "message": 'quote " backslash \\ åäö\nnew line',
        "facts": {"ratio": float("nan"), "left": float("inf"), "n": 3.0},
        "duration_seconds": 0.25,
        "finished_at": 1764601234.125,
    }
    await fleet.writer.save_results([("web", "tcp", result)])
    _, rows = await fleet.reader.fleet_results(0, "srv-b")
    (row,) = rows
    assert row["message"] == result["message"] and row["agent"] == "srv-a"
    assert row["facts"]["left"] == float("inf") and row["facts"]["n"] == 3.0
    assert row["facts"]["ratio"] != row["facts"]["ratio"]  # NaN
    assert (row["duration_seconds"], row["finished_at"]) == (0.25, 1764601234.125)
    stored = (await fleet.reader.load_results())["web"]
    assert stored["message"] == result["message"] and stored["facts"]["n"] == 3.0
