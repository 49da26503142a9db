"""The significant-incident clocks in the daemon: marks, reports, reminders, metrics.

The clock logic is alerting/significant.py; this keeps the records in the store's
per-check state (one JSON list under a reserved name) and hands reminders to the
outbox as Notifications, committed before they are marked handled: a crash in
between sends a reminder again with the same dedup key, never loses one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerting import significant
from alerting.model import Incident, Outcome
from alerting.significant import STAGES, Significance

if TYPE_CHECKING:
    from collections.abc import Callable

    from agent.config import Config
    from alerting.engine import IncidentEngine


class ClockHost(Protocol):
    """What the clocks use of the alerting service (it passes itself)."""

    config: Config
    engine: IncidentEngine | None
    clock: Callable[[], float]

    raw_store: Any

    def enqueue(self, out: Outcome) -> None: ...

    async def commit(self) -> None: ...


log = logging.getLogger("vaktpost.significant")
STATE_NAME = "_significant"  # reserved: no check is named with a leading underscore
STATE_KEY = "incidents"


class SignificantClocks:
    def __init__(self, service: ClockHost) -> None:
        self.service = service
        self.records: dict[int, Significance] = {}
        self.now = service.clock

    async def load(self) -> None:
        data = await self.service.raw_store.get_state(STATE_NAME, STATE_KEY)
        self.records = {d["incident_id"]: Significance.from_json(d) for d in data or []}

    async def _save(self) -> None:
        rows = [r.to_json() for r in sorted(self.records.values(), key=lambda r: r.incident_id)]
        await self.service.raw_store.set_state(STATE_NAME, STATE_KEY, rows)

    async def mark(self, incident_id: int, by: str, reason: str) -> Significance:
        """Starts the clocks; marking an incident twice keeps the first mark's clocks."""
        existing = self.records.get(incident_id)
        if existing is not None:
            return existing
        record = Significance(incident_id, self.now(), by, reason)
        self.records[incident_id] = record
        await self._save()
        log.info("incident marked significant", extra={"incident": incident_id, "by": by})
        return record

    async def reported(self, incident_id: int, stage: str, by: str) -> Significance:
        record = self.records.get(incident_id)
        if record is None:
            raise KeyError(incident_id)
        if stage not in STAGES:
            raise ValueError(stage)
        if stage not in record.reported:
            record.reported[stage] = self.now()
            record.reported_by[stage] = by
            await self._save()
        return record

    async def tick(self) -> None:
        """Rules first (an incident they mark gets its clocks now), then due reminders."""
        engine = self.service.engine
        if engine is None:
            return
        now = self.now()
        changed = self._apply_rules(engine.state.incidents, now)
        out = Outcome()
        for record in self.records.values():
            reminders, handled = significant.due_reminders(record, self.limits, now)
            if not handled:
                continue
            incident = engine.state.incidents.get(record.incident_id) or self._stub(record)
            for reminder in reminders:
                out.notifications.extend(self._notifications(reminder, incident, now))
            record.reminded.extend(handled)
            changed = True
        if out.notifications:
            self.service.enqueue(out)
            await self.service.commit()
        if changed:
            await self._save()

    @property
    def limits(self) -> Any:
        return self.service.config.agent.significant

    def _apply_rules(self, incidents: dict[int, Incident], now: float) -> bool:
        changed = False
        for incident in incidents.values():
            if incident.id in self.records or incident.department is None:
                continue
            dept = next(
                (d for d in self.service.config.departments if d.id == incident.department), None
            )
            if dept is None or not dept.significant_when:
                continue
            unit = next((s for s in dept.systems if s.id == incident.system), None)
            rto = unit.rto if unit is not None else None
            mtpd = unit.mtpd if unit is not None else None
            for rule in dept.significant_when:
                if significant.rule_matches(rule, incident, rto, mtpd, now):
                    reason = significant.describe_rule(rule)
                    self.records[incident.id] = Significance(incident.id, now, "rule", reason)
                    log.info("incident significant by rule", extra={"incident": incident.id})
                    changed = True
                    break
        return changed

    def _notifications(
        self, reminder: significant.Reminder, incident: Incident, now: float
    ) -> list[Any]:
        from alerting.text import local_time

        agent = self.service.config.agent
        when = local_time(reminder.deadline, agent.timezone)
        return [
            significant.reminder_notification(
                reminder, incident, channel, agent.name, now, agent.language, when
            )
            for channel in agent.compliance_notify
        ]

    def _stub(self, record: Significance) -> Incident:
        # A resolved incident is no longer in the engine; its reminders still name it.
        return Incident(
            record.incident_id, None, f"incident {record.incident_id}", record.marked_at
        )

    def document(self, incident_id: int) -> dict[str, Any] | None:
        """The significance of one incident as the API shows it; None if not significant."""
        from alerting.payload import rfc3339

        record = self.records.get(incident_id)
        if record is None:
            return None
        now = self.now()
        late = significant.overdue(record, self.limits, now)
        stages = []
        for stage, deadline in significant.deadlines(record, self.limits).items():
            sent = record.reported.get(stage)
            stages.append(
                {
                    "stage": stage,
                    "deadline": rfc3339(deadline),
                    "remaining_seconds": round(deadline - now, 3),
                    "reported_at": rfc3339(sent) if sent is not None else None,
                    "reported_by": record.reported_by.get(stage),
                    "overdue": late[stage],
                }
            )
        return {
            "incident_id": incident_id,
            "marked_at": rfc3339(record.marked_at),
            "marked_by": record.marked_by,
            "reason": record.reason,
            "stages": stages,
        }

    def open_documents(self) -> list[dict[str, Any]]:
        """Significant incidents with a stage not yet reported, soonest deadline first."""
        docs = [
            d
            for i, r in self.records.items()
            if len(r.reported) < len(STAGES) and (d := self.document(i)) is not None
        ]
        return sorted(
            docs,
            key=lambda d: min(
                s["remaining_seconds"] for s in d["stages"] if s["reported_at"] is None
            ),
        )

    def collector(self) -> Collector:
        return SignificantCollector(self)


class SignificantCollector(Collector):
    """significant_deadline_timestamp_seconds and significant_overdue, per unreported stage."""

    def __init__(self, clocks: SignificantClocks) -> None:
        self.clocks = clocks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["incident", "stage"]
        deadline = GaugeMetricFamily(
            "vaktpost_significant_deadline_timestamp_seconds",
            "When a report stage of a significant incident is due (unix time).",
            labels=labels,
        )
        late = GaugeMetricFamily(
            "vaktpost_significant_overdue",
            "1 once a report stage of a significant incident is past its deadline unsent.",
            labels=labels,
        )
        now = self.clocks.now()
        limits = self.clocks.limits
        for record in self.clocks.records.values():
            overdue = significant.overdue(record, limits, now)
            for stage, at in significant.deadlines(record, limits).items():
                if stage in record.reported:
                    continue
                key = [str(record.incident_id), stage]
                deadline.add_metric(key, at)
                late.add_metric(key, 1.0 if overdue[stage] else 0.0)
        yield deadline
        yield late
