"""Read-only views of the engine's state: incident JSON, department states, status HTML."""

from __future__ import annotations

from typing import Any

from alerting.engine import IncidentEngine
from alerting.model import Incident
from alerting.payload import rfc3339

DEPARTMENT_STATES = ("normal", "degraded", "rto_breached", "mtpd_breached")


def _ts(value: float | None) -> str | None:
    return rfc3339(value) if value is not None else None


def next_step(engine: IncidentEngine, incident: Incident) -> tuple[int | None, float | None]:
    unit = engine.plan.units.get((incident.department, incident.system))
    if unit is None or not incident.is_open:
        return None, None
    best: tuple[int | None, float | None] = (None, None)
    for index in range(len(unit.ladder)):
        if index in incident.steps_taken:
            continue
        try:
            at = incident.started_at + unit.step_at(index)
        except ValueError:
            continue
        if best[1] is None or at < best[1]:
            best = (index, at)
    return best


def incident_json(engine: IncidentEngine, incident: Incident, now: float) -> dict[str, Any]:
    unit = engine.plan.units.get((incident.department, incident.system))
    end = incident.resolved_at if incident.resolved_at is not None else now
    step, due = next_step(engine, incident)
    return {
        "id": incident.id,
        "department": incident.department,
        "system": incident.system,
        "status": incident.status,
        "started_at": rfc3339(incident.started_at),
        "resolved_at": _ts(incident.resolved_at),
        "downtime_seconds": round(end - incident.started_at, 3),
        "checks": list(incident.checks),
        "impacted": [{"department": d, "system": s} for d, s in incident.impacted],
        "caused_by": incident.caused_by,
        "root_cause": incident.root or None,
        "steps_taken": list(incident.steps_taken),
        "current_step": incident.current_step,
        "next_step": step,
        "next_step_due": _ts(due),
        "notified": list(incident.notified),
        "acknowledged_by": incident.acked_by,
        "acknowledged_at": _ts(incident.acked_at),
        "ack_comment": incident.ack_comment,
        "rto_seconds": unit.rto if unit else None,
        "mtpd_seconds": unit.mtpd if unit else None,
        "rto_breached": incident.rto_breached,
        "mtpd_breached": incident.mtpd_breached,
    }


def department_state(engine: IncidentEngine, department: str) -> int:
    """0 normal, 1 degraded, 2 RTO breached, 3 MTPD breached (worst open incident)."""
    worst = 0
    for incident in engine.state.incidents.values():
        if incident.department != department:
            continue
        level = 3 if incident.mtpd_breached else 2 if incident.rto_breached else 1
        worst = max(worst, level)
    return worst


def system_up(engine: IncidentEngine, department: str, system: str) -> bool | None:
    """As the engine sees it: down while an incident is open for the system, whether
    its checks are critical or unreachable; None while no check of it has reported."""
    if engine.open_incident((department, system)) is not None:
        return False
    unit = engine.plan.units.get((department, system))
    checks = unit.checks if unit is not None else ()
    return True if any(c in engine.state.checks for c in checks) else None


def department_extras(engine: IncidentEngine, now: float) -> dict[str, dict[str, Any]]:
    """The engine's part of every department document: state, incidents, systems' `up`.

    `vaktpost_department_state` reads the same `department_state`, so the API,
    the status page, /readiness and the metric cannot disagree.
    """
    out: dict[str, dict[str, Any]] = {}
    for dept in engine.config.departments:
        incidents = [
            incident_json(engine, i, now)
            for i in engine.state.incidents.values()
            if i.department == dept.id
        ]
        out[dept.id] = {
            "state": DEPARTMENT_STATES[department_state(engine, dept.id)],
            "incidents": incidents,
            "systems": {s.id: {"up": system_up(engine, dept.id, s.id)} for s in dept.systems},
        }
    return out
