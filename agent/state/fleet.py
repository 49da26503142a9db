"""What a store offers a fleet beyond agent/state/interface.py: the engine lease and
delivery claims.

PostgreSQL (agent/state/postgres.py) implements them across agents on the
database's clock. An agent alone on SQLite is trivially a fleet of one: it always
holds the lease (token 1), and claims only keep its own concurrent lanes from
taking the same row twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from agent.state.interface import AlertingStore, OutboxRow
from agent.state.sqlite import Store

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.state.postgres import PostgresStore


class LeaseGrace:
    """Whether the members' leases can be believed after this agent's last look.

    Nobody can renew while the store is down, so leases that lapsed then say
    nothing about the agents: after the store answers again (also after a look
    that hung longer than a lease, though nothing failed) give them one lease to
    renew before acting on a lapse (moving checks, opening an agent's incident,
    handing a pinned channel's rows to its fallback).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at = -1e9
        self._answered_at = clock()

    def failed(self) -> None:
        self._failed_at = self._clock()

    def answered(self, lease: float) -> bool:
        """A look got through: True when lapses may be acted on."""
        now = self._clock()
        if now - self._answered_at > lease:
            self._failed_at = now
        self._answered_at = now
        return now - self._failed_at >= lease


class FleetStore(Protocol):
    async def now(self) -> float: ...

    async def take_lease(self, ttl: float) -> int | None: ...

    async def release_lease(self) -> None: ...

    async def claim(self, channel: str, limit: int, hold: float = 60.0) -> list[OutboxRow]: ...


class HeadSource(Protocol):
    async def head(self, channel: str, limit: int) -> list[OutboxRow]: ...


class LocalFleet:
    """The fleet operations of a single agent on an embedded store."""

    TOKEN = 1

    def __init__(self, outbox: HeadSource, clock: Any = time.time) -> None:
        self._outbox = outbox
        self._clock = clock
        self._claimed: dict[int, float] = {}  # row id -> claimed until (monotonic)
        self._lock = asyncio.Lock()

    async def now(self) -> float:
        return float(self._clock())

    async def take_lease(self, ttl: float) -> int | None:
        return self.TOKEN

    async def release_lease(self) -> None:
        return None

    async def claim(self, channel: str, limit: int, hold: float = 60.0) -> list[OutboxRow]:
        async with self._lock:
            now, mono = self._clock(), time.monotonic()
            self._claimed = {k: v for k, v in self._claimed.items() if v > mono}
            rows = await self._outbox.head(channel, limit + len(self._claimed))
            taken = [r for r in rows if r.id not in self._claimed and r.next_attempt_at <= now][
                :limit
            ]
            for r in taken:
                self._claimed[r.id] = mono + hold
            return taken


def build_store(agent: AgentConfig) -> Store | PostgresStore:
    """The store agent.store names: PostgreSQL for a fleet, else SQLite under state_dir."""
    if agent.store is None:
        return Store(agent.state_dir)
    from agent.state.postgres import PostgresStore, read_password_file

    password = None
    if agent.store_password_file is not None:
        password = read_password_file(agent.store_password_file)
    return PostgresStore(agent.store, password=password, agent=agent.name)


def alerting_store(store: Store | PostgresStore) -> AlertingStore:
    """The alerting side of a store: SQLite's is a wrapper, PostgreSQL's is the store."""
    from agent.state.sqlite_alerting import IncidentStore

    if isinstance(store, Store):
        return IncidentStore(store)
    return store
