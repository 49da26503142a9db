"""History: records every check status change from the result book and prunes
everything (changes, incidents, the audit trail) older than `agent.history`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config import Config
from agent.results import CheckState
from agent.state.sqlite_history import HistoryStore

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from agent.host import Host

log = logging.getLogger("vaktpost.history")
PRUNE_EVERY = 3600.0


class HistoryComponent:
    def __init__(self, host: Host, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.clock = clock
        self.store = HistoryStore(host.store)
        self._last: dict[str, str] = {}
        self._queue: list[tuple[str, float, str, str]] = []
        self._restores: list[tuple[str, float, bool, float | None]] = []
        self._restore_seen: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._last = await self.store.last_statuses()
        await self.prune()
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
        except Exception as exc:  # kept for the next flush
            self._restores = restores + self._restores
            log.error("could not record restore tests", extra={"error": str(exc)})
        rows, self._queue = self._queue, []
        try:
            await self.store.record_changes(rows)
        except Exception as exc:  # store full or gone: keep them for the next flush
            self._queue = rows + self._queue
            log.error("could not record status changes", extra={"error": str(exc)})

    async def prune(self) -> None:
        keep = self.host.config.agent.history
        with contextlib.suppress(Exception):
            counts = await self.store.prune(self.clock() - keep)
            if any(counts.values()):
                log.info("history pruned", extra=counts)

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
            await asyncio.sleep(PRUNE_EVERY)
            await self.prune()
