"""Wires alerting into the daemon: result listener, HTTP routes, metrics, status page."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.config import Config
from agent.results import CheckState
from alerting.api import AlertingApi
from alerting.metrics import AlertingCollector
from alerting.service import AlertingService
from alerting.views import department_extras, status_section

if TYPE_CHECKING:
    from agent.daemon import Agent


class AlertingComponent:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.service = AlertingService(
            agent.config, agent.store, healthy=lambda: agent.runtime.healthy
        )
        self.routes: list[web.RouteDef] = AlertingApi(self.service).routes()
        self._collector = AlertingCollector(
            lambda: self.service.engine,
            lambda: self.service.outbox,
            lambda: self.service.peer_up,
            errors=lambda: self.service.engine_errors,
        )

    async def start(self) -> None:
        await self.service.start()
        self.agent.book.listeners.append(self._on_result)
        self.agent.metrics.registry.register(self._collector)
        self.agent.status_sections.append(self._status_section)
        self.agent.department_extras.append(self._department_extras)

    async def stop(self) -> None:
        if self._on_result in self.agent.book.listeners:
            self.agent.book.listeners.remove(self._on_result)
        await self.service.stop()

    def reload(self, config: Config) -> None:
        self.service.reload(config)

    def _on_result(self, state: CheckState) -> None:
        result = state.result
        if result is None:
            return
        now = result.finished_at or time.time()
        self.service.observe(state.config.name, result.status.label, result.message, now)

    def _status_section(self, agent: Agent) -> str:
        engine = self.service.engine
        return status_section(engine, time.time()) if engine is not None else ""

    def _department_extras(self) -> dict[str, dict[str, Any]]:
        engine = self.service.engine
        return department_extras(engine, time.time()) if engine is not None else {}
