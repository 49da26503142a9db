"""Wires alerting into the daemon: the result listener, the service, its metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.results import CheckState
from alerting.metrics import AlertingCollector
from alerting.service import AlertingService
from alerting.views import department_extras

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from agent.host import Host


class AlertingComponent:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.service = AlertingService(
            host.config,
            getattr(host, "shared_store", None) or host.store,  # agent.store: the fleet's
            healthy=lambda: host.runtime.healthy,
        )
        self._collector = AlertingCollector(
            lambda: self.service.engine,
            lambda: self.service.outbox,
            lambda: self.service.peer_up,
            errors=lambda: self.service.engine_errors,
        )

    async def start(self) -> None:
        await self.service.start()
        self.host.book.listeners.append(self._on_result)

    async def stop(self) -> None:
        if self._on_result in self.host.book.listeners:
            self.host.book.listeners.remove(self._on_result)
        await self.service.stop()

    def reload(self, config: Config) -> None:
        self.service.reload(config)

    def collectors(self) -> list[Collector]:
        return [self._collector, self.service.significant.collector()]

    def _on_result(self, state: CheckState) -> None:
        result = state.result
        if result is None:
            return
        now = result.finished_at or time.time()
        self.service.observe(state.config.name, result.status.label, result.message, now)

    def department_extras(self) -> dict[str, dict[str, Any]]:
        engine = self.service.engine
        return department_extras(engine, time.time()) if engine is not None else {}
