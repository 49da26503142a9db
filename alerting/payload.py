"""The notification payload of DESIGN.md (webhook body, command stdin), schema in docs/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alerting.model import CheckTrack, Incident, NotificationKind
from alerting.plan import Plan, Unit
from alerting.text import render

VERSION = 1


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dedup_key(agent: str, incident: Incident, suffix: str) -> str:
    """agent/department/system/incident/step[/repeat-N]; `-` for no department."""
    return f"{agent}/{incident.department or '-'}/{incident.system}/{incident.id}/{suffix}"


def _remaining(total: float | None, down: float) -> float | None:
    return None if total is None else round(total - down, 3)


def build_payload(
    plan: Plan,
    unit: Unit,
    incident: Incident,
    tracks: dict[str, CheckTrack],
    kind: NotificationKind,
    key: str,
    now: float,
    message: str = "",
) -> dict[str, Any]:
    end = incident.resolved_at if incident.resolved_at is not None else now
    down = max(0.0, end - incident.started_at)
    status = "resolved" if kind == "resolved" else incident.status
    checks = []
    for name in incident.checks or unit.checks:
        track = tracks.get(name)
        if track is not None:
            checks.append({"name": name, "status": track.status, "message": track.message})
    payload: dict[str, Any] = {
        "version": VERSION,
        "dedup_key": key,
        "incident_id": incident.id,
        "status": status,
        "kind": kind,
        "step": incident.current_step,
        "department": incident.department,
        "department_name": unit.department_name or None,
        "system": incident.system,
        "system_name": unit.system_name,
        "checks": checks,
        "started_at": rfc3339(incident.started_at),
        "resolved_at": rfc3339(incident.resolved_at) if incident.resolved_at else None,
        "downtime_seconds": round(down, 3),
        "rto_seconds": unit.rto,
        "mtpd_seconds": unit.mtpd,
        "rto_remaining_seconds": _remaining(unit.rto, down),
        "mtpd_remaining_seconds": _remaining(unit.mtpd, down),
        "fallback": unit.fallback,
        "impacted": [{"department": d, "system": s} for d, s in incident.impacted],
        "acknowledged_by": incident.acked_by,
        "message": message,
        "agent": plan.agent,
        "created_at": rfc3339(now),
    }
    what = unit.system_name
    if unit.department_name:
        what = f"{unit.department_name}: {unit.system_name}"
    payload["text"] = render(
        payload,
        kind,
        language=plan.language,
        timezone=plan.timezone,
        started_ts=incident.started_at,
        what=what,
    )
    return payload
