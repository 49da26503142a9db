"""Readiness in the daemon: the department document and backup_ready (pages: agent/web/)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent import readiness
from agent.config import Config
from agent.state.sqlite import StoreError
from checks.base import CheckResult

if TYPE_CHECKING:
    from agent.host import Host

Extras = Callable[[], dict[str, dict[str, Any]]]

log = logging.getLogger("vaktpost.readiness")


class ReadinessCollector(Collector):
    """backup_ready{department,system} and backup_rpo_seconds{department,system,check},
    computed at scrape time from the department document."""

    def __init__(self, component: ReadinessComponent) -> None:
        self.component = component

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "vaktpost_backup_ready",
            "1 if every backup of the system is fresh, verified and restore-tested, else 0.",
            labels=["department", "system"],
        )
        # The join key of backup_age_seconds{check}: age against RPO per department and system.
        rpo = GaugeMetricFamily(
            "vaktpost_backup_rpo_seconds",
            "The RPO a system sets for one of its backup checks, in seconds.",
            labels=["department", "system", "check"],
        )
        for dept in self.component.document()["departments"]:
            for system in dept["systems"]:
                if system["backups"]:  # a system without backups has no backup readiness
                    family.add_metric([dept["id"], system["id"]], 1.0 if system["ready"] else 0.0)
                for backup in system["backups"]:
                    labels = [dept["id"], system["id"], backup["check"]]
                    rpo.add_metric(labels, float(backup["rpo_seconds"]))
        yield family
        yield rpo


class ReadinessComponent:
    def __init__(self, host: Host, extras: Sequence[Extras] = ()) -> None:
        self.host = host
        # Providers of per-department extras (the engine's continuity state, open
        # incidents, each system's `up`): department id -> keys merged into its JSON.
        self.extras = tuple(extras)
        # Results recorded before this start: readiness is known at once, not after a run.
        self._recorded: dict[str, CheckResult] = {}
        self._collector = ReadinessCollector(self)

    async def start(self) -> None:
        try:
            rows = await self.host.store.load_results()
            self._recorded = {n: readiness.result_from_json(d) for n, d in rows.items()}
        except (StoreError, KeyError, ValueError) as exc:
            log.warning("recorded results unreadable", extra={"error": str(exc)})

    async def stop(self) -> None:
        pass

    def collectors(self) -> list[Collector]:
        return [self._collector]

    def reload(self, config: Config) -> None:
        pass  # reads the host's config on every use

    def results(self) -> dict[str, CheckResult]:
        live = {n: s.result for n, s in self.host.book.states.items() if s.result is not None}
        return {**self._recorded, **live}

    def document(self, department: str | None = None) -> dict[str, Any]:
        """THE department document: the readiness report with the engine's extras
        (continuity state, open incidents, each system's `up`) merged in.

        Every renderer takes it from here -- /api/v1/departments, /readiness, the
        status page, backup_ready -- so none can tell a department's state
        differently from another. Raises KeyError for an unknown department.
        """
        doc = readiness.report(self.host.config, self.results(), time.time(), department)
        extras = []
        for provide in self.extras:
            try:
                extras.append(provide())
            except Exception:  # another part's bug must not take the document down
                log.exception("department extras failed")
        return readiness.merge_extras(doc, extras)

    def departments_json(self) -> dict[str, Any]:
        """The whole document, as /api/v1/departments serves it."""
        return self.document()
