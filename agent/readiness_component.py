"""Readiness in the daemon: GET /api/v1/departments, the printable page, metrics, status page."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent import readiness, readiness_render
from agent.auth import require_reader
from agent.config import Config
from alerting.store import StoreError
from checks.base import CheckResult

if TYPE_CHECKING:
    from agent.daemon import Agent

log = logging.getLogger("vaktpost.readiness")


class ReadinessCollector(Collector):
    """backup_ready{department,system}, computed at scrape time from the department document."""

    def __init__(self, component: ReadinessComponent) -> None:
        self.component = component

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "vaktpost_backup_ready",
            "1 if every backup of the system is fresh, verified and restore-tested, else 0.",
            labels=["department", "system"],
        )
        for dept in self.component.document()["departments"]:
            for system in dept["systems"]:
                if system["backups"]:  # a system without backups has no backup readiness
                    family.add_metric([dept["id"], system["id"]], 1.0 if system["ready"] else 0.0)
        yield family


class ReadinessComponent:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # Results recorded before this start: readiness is known at once, not after a run.
        self._recorded: dict[str, CheckResult] = {}
        self._collector = ReadinessCollector(self)
        self.routes: list[web.RouteDef] = [
            web.get("/api/v1/departments", self.api_departments),
            web.get("/readiness", self.printable),
        ]

    async def start(self) -> None:
        try:
            rows = await asyncio.to_thread(self.agent.store.load_results_sync)
            self._recorded = {n: readiness.result_from_json(d) for n, d in rows.items()}
        except (StoreError, KeyError, ValueError) as exc:
            log.warning("recorded results unreadable", extra={"error": str(exc)})
        self.agent.metrics.registry.register(self._collector)
        self.agent.status_sections.append(self._status_section)

    async def stop(self) -> None:
        self.agent.metrics.registry.unregister(self._collector)
        if self._status_section in self.agent.status_sections:
            self.agent.status_sections.remove(self._status_section)

    def reload(self, config: Config) -> None:
        pass  # reads agent.config on every use

    def results(self) -> dict[str, CheckResult]:
        live = {n: s.result for n, s in self.agent.book.states.items() if s.result is not None}
        return {**self._recorded, **live}

    def document(self, department: str | None = None) -> dict[str, Any]:
        """THE department document: the readiness report with the engine's extras
        (continuity state, open incidents, each system's `up`) merged in.

        Every renderer takes it from here -- /api/v1/departments, /readiness, the
        status page, backup_ready -- so none can tell a department's state
        differently from another. Raises KeyError for an unknown department.
        """
        doc = readiness.report(self.agent.config, self.results(), time.time(), department)
        extras = []
        for provide in self.agent.department_extras:
            try:
                extras.append(provide())
            except Exception:  # another part's bug must not take the document down
                log.exception("department extras failed")
        return readiness.merge_extras(doc, extras)

    def departments_json(self) -> dict[str, Any]:
        """The whole document, as /api/v1/departments serves it."""
        return self.document()

    async def api_departments(self, request: web.Request) -> web.Response:
        await require_reader(request, self.agent.config.agent.web)
        return web.json_response(self.document())

    async def printable(self, request: web.Request) -> web.Response:
        await require_reader(request, self.agent.config.agent.web)
        department = request.query.get("department")
        try:
            doc = self.document(department)
        except KeyError:
            raise web.HTTPNotFound(reason=f"unknown department {department!r}") from None
        page = readiness_render.page(doc, self.agent.config.agent.language)
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    def _status_section(self, agent: Agent) -> str:
        if not agent.config.departments:
            return ""
        return readiness_render.section(self.document(), agent.config.agent.language)
