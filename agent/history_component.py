"""History: records every check status change from the result book and prunes
everything (changes, incidents, the audit trail) older than `agent.history`.

Alone, the history is the agent's SQLite under state_dir; in a fleet (agent.store)
it is the shared store's, where each agent records the checks it runs and the
engine holder alone prunes (agent/state/pg_history.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config import Config
from agent.results import CheckState
from agent.state.sqlite_history import HistoryStore as SqliteHistory

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from agent.host import Host
    from agent.state.interface import HistoryStore, IncidentSpan

log = logging.getLogger("vaktpost.history")
PRUNE_EVERY = 3600.0
# In a fleet only the engine holder prunes, and it takes the lease after its start:
# an agent that was not holding looks again this soon.
PRUNE_RETRY = 60.0
# The status page's windows (90 days of bars, 30 of incidents), with a margin: how far
# back the incidents it last read are kept for a fleet's store outage.
MEMORY_DAYS = 100.0


class HistoryComponent:
    def __init__(self, host: Host, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.clock = clock
        self.shared = getattr(host, "shared_store", None) is not None
        self.store: HistoryStore = self._build_store(host)
        self._last: dict[str, str] = {}
        self._queue: list[tuple[str, float, str, str]] = []
        self._restores: list[tuple[str, float, bool, float | None]] = []
        self._restore_seen: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pruned = False
        self._failing: set[str] = set()
        self._memory: dict[int, IncidentSpan] = {}  # incidents the status page last read

    @staticmethod
    def _build_store(host: Host) -> HistoryStore:
        shared = getattr(host, "shared_store", None)
        if shared is None:
            return SqliteHistory(host.store)
        from agent.state.pg_history import PostgresHistory  # psycopg: only in a fleet

        return PostgresHistory(shared)

    async def start(self) -> None:
        try:
            self._last = await self.store.last_statuses()
        except Exception as exc:  # a shared store gone at this moment: flush compares again
            log.error("could not read the last statuses", extra={"error": str(exc)})
        self._pruned = await self.prune()
        self.host.book.listeners.append(self._on_result)
        self._tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self._prune_forever()),
        ]

    async def stop(self) -> None:
        if self._on_result in self.host.book.listeners:
            self.host.book.listeners.remove(self._on_result)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    def reload(self, config: Config) -> None:
        pass  # agent.history is read at each prune

    def collectors(self) -> list[Collector]:
        return []

    def _on_result(self, state: CheckState) -> None:
        result = state.result
        if result is None:
            return
        at = result.facts.get("restore_test_at")
        # Every run of the check carries its last test again: queue each test once (the
        # store also keeps it once, so a restart that sees it again is harmless).
        if at is not None and self._restore_seen.get(state.config.name) != at:
            self._restore_seen[state.config.name] = at
            ok = result.facts.get("restore_ok") == 1.0
            self._restores.append((state.config.name, at, ok, result.facts.get("restore_seconds")))
        name, status = state.config.name, result.status.label
        if self._last.get(name) == status:
            return
        self._last[name] = status
        self._queue.append((name, result.finished_at or self.clock(), status, result.message))

    async def flush(self) -> None:
        restores, self._restores = self._restores, []
        try:
            await self.store.record_restore_tests(restores)
            self._failing.discard("restore tests")
        except Exception as exc:  # kept for the next flush
            self._restores = restores + self._restores
            self._failed("restore tests", exc)
        rows, self._queue = self._queue, []
        try:
            if self.shared and rows:
                rows = await self._new_changes(rows)
            await self.store.record_changes(rows)
            self._failing.discard("status changes")
        except Exception as exc:  # store full or gone: keep them for the next flush
            self._queue = rows + self._queue
            self._failed("status changes", exc)

    def _failed(self, what: str, exc: Exception) -> None:
        # Once until it works again: a shared store's outage would say it every second.
        if what not in self._failing:
            self._failing.add(what)
            log.error(f"could not record {what}", extra={"error": str(exc)})

    async def spans(
        self, since: float, until: float, from_memory: bool = False
    ) -> list[IncidentSpan]:
        """Incidents overlapping [since, until). `from_memory`: for the status page,
        which must answer while a fleet's store is down: then from its last reads."""
        shared = getattr(self.host, "shared_store", None)
        if not from_memory or shared is None:
            return await self.store.spans(since, until)
        if shared.writable:  # known down: no wait for the pool's timeout
            try:
                found = await self.store.spans(since, until)
            except Exception as exc:
                if not self.is_store_failure(exc):
                    raise
            else:
                self._remember(found, since, until)
                return found
        return [s for s in self._memory.values() if _overlaps(s, since, until)]

    def _remember(self, found: list[IncidentSpan], since: float, until: float) -> None:
        # The read is the truth for its window (a pruned incident goes); older ones stay
        # for the other windows, up to MEMORY_DAYS.
        keep = self.clock() - MEMORY_DAYS * 86400.0
        self._memory = {
            i: s
            for i, s in self._memory.items()
            if not _overlaps(s, since, until) and _overlaps(s, keep, float("inf"))
        }
        self._memory.update((s.id, s) for s in found)

    def is_store_failure(self, exc: BaseException) -> bool:
        """The fleet's store is down or failing (not a bug): readers answer 503."""
        if getattr(self.host, "shared_store", None) is None:
            return False
        from agent.state.postgres import is_store_failure
        from agent.state.postgres_errors import PostgresStoreError

        return isinstance(exc, PostgresStoreError) or is_store_failure(exc)

    async def _new_changes(
        self, rows: list[tuple[str, float, str, str]]
    ) -> list[tuple[str, float, str, str]]:
        """The rows that change what the shared store last holds: a check that moved
        here from another agent was recorded there since this agent last looked."""
        last = await self.store.last_statuses({r[0] for r in rows})
        out = []
        for row in rows:
            if last.get(row[0]) != row[2]:
                last[row[0]] = row[2]
                out.append(row)
        return out

    async def prune(self) -> bool:
        """Prune past agent.history; False when nothing was pruned because another
        agent holds the engine (or the store failed): try again soon."""
        keep = self.host.config.agent.history
        try:
            counts = await self.store.prune(self.clock() - keep)
        except Exception:  # the store's health is reported elsewhere
            return False
        if any(counts.values()):
            log.info("history pruned", extra=counts)
        return bool(counts)

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        try:
            await self.store.audit(self.clock(), actor, action, target, detail)
        except Exception as exc:  # the action happened; failing to note it must not undo it
            log.error("could not record the audit trail", extra={"error": str(exc)})

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._queue:
                await self.flush()

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY if self._pruned else PRUNE_RETRY)
            self._pruned = await self.prune()


def _overlaps(span: IncidentSpan, since: float, until: float) -> bool:
    return span.started_at < until and (span.resolved_at is None or span.resolved_at >= since)
