"""Continuity and alerting metrics, rendered from the engine's state at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerting.delivery_placement import undeliverable_metric
from alerting.views import department_state

if TYPE_CHECKING:
    from alerting.engine import IncidentEngine
    from alerting.outbox import Outbox

P = "vaktpost_"


class AlertingCollector(Collector):
    def __init__(
        self,
        engine: Callable[[], IncidentEngine | None],
        outbox: Callable[[], Outbox | None],
        peers: Callable[[], dict[str, bool]],
        clock: Callable[[], float] = time.time,
        errors: Callable[[], int] = lambda: 0,
    ) -> None:
        self._errors = errors
        self._engine = engine
        self._outbox = outbox
        self._peers = peers
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        engine = self._engine()
        if engine is not None:
            yield from self._systems(engine)
            yield from self._departments(engine)
        peer = GaugeMetricFamily(
            f"{P}peer_up", "1 if the peer agent answered /healthz.", labels=["peer"]
        )
        for url, up in sorted(self._peers().items()):
            peer.add_metric([url], 1.0 if up else 0.0)
        yield peer
        errors = CounterMetricFamily(
            f"{P}engine_errors",
            "Engine calls that raised and were rolled back, and alerting loops restarted.",
        )
        errors.add_metric([], float(self._errors()))
        yield errors
        outbox = self._outbox()
        total = CounterMetricFamily(
            f"{P}notifications", "Notification attempts by outcome.", labels=["channel", "outcome"]
        )
        pending = GaugeMetricFamily(
            f"{P}outbox_pending", "Notifications waiting to be sent.", labels=["channel"]
        )
        if outbox is not None:
            for (channel, outcome), count in sorted(outbox.outcomes.items()):
                total.add_metric([channel, outcome], count)
            for channel, count in sorted(outbox.pending.items()):
                pending.add_metric([channel], count)
        yield total
        yield pending
        if outbox is not None:
            yield undeliverable_metric(outbox.placement, outbox.configs)

    def _systems(self, engine: IncidentEngine) -> Iterator[Metric]:
        now = self._clock()
        labels = ["department", "system"]
        up = GaugeMetricFamily(
            f"{P}system_up", "1 unless an incident is open for the system.", labels=labels
        )
        down = GaugeMetricFamily(
            f"{P}system_downtime_seconds",
            "Seconds since the open incident started (0 when up).",
            labels=labels,
        )
        rto = GaugeMetricFamily(f"{P}system_rto_seconds", "Recovery time objective.", labels=labels)
        mtpd = GaugeMetricFamily(
            f"{P}system_mtpd_seconds", "Maximum tolerable period of disruption.", labels=labels
        )
        left = GaugeMetricFamily(
            f"{P}system_mtpd_remaining_seconds",
            "MTPD minus the current downtime (negative when breached).",
            labels=labels,
        )
        step = GaugeMetricFamily(
            f"{P}incident_escalation_step",
            "Current escalation step of the open incident (-1 none).",
            labels=labels,
        )
        for (dept, system), unit in engine.plan.units.items():
            if dept is None:
                continue
            key = [dept, system]
            incident = engine.open_incident((dept, system))
            seconds = now - incident.started_at if incident is not None else 0.0
            up.add_metric(key, 0.0 if incident is not None else 1.0)
            down.add_metric(key, seconds)
            if unit.rto is not None:
                rto.add_metric(key, unit.rto)
            if unit.mtpd is not None:
                mtpd.add_metric(key, unit.mtpd)
                left.add_metric(key, unit.mtpd - seconds)
            current = incident.current_step if incident is not None else None
            step.add_metric(key, -1.0 if current is None else float(current))
        yield from (up, down, rto, mtpd, left, step)

    def _departments(self, engine: IncidentEngine) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            f"{P}department_state",
            "0 normal, 1 degraded, 2 RTO breached, 3 MTPD breached.",
            labels=["department"],
        )
        opened = GaugeMetricFamily(
            f"{P}incidents_open",
            'Open incidents (department "" for checks in none).',
            labels=["department"],
        )
        counts: dict[str, int] = {d.id: 0 for d in engine.config.departments}
        for incident in engine.state.incidents.values():
            name = incident.department or ""
            counts[name] = counts.get(name, 0) + 1
        for dept in engine.config.departments:
            state.add_metric([dept.id], float(department_state(engine, dept.id)))
        for name, count in sorted(counts.items()):
            opened.add_metric([name], float(count))
        yield state
        yield opened
