"""The notification payload of DESIGN.md (webhook body, command stdin), schema in docs/."""

from __future__ import annotations

from collections.abc import Mapping
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
    incidents: Mapping[tuple[str | None, str], Incident] | None = None,
    ack_url: str | None = None,
) -> dict[str, Any]:
    """`incidents` (open ones by system) gives each impacted system its own clock;
    `ack_url` is the signed ack link of a firing notice (alerting/acklinks.py)."""
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
        "impacted": [
            impacted_entry(plan, key, (incidents or {}).get(key), down, now)
            for key in incident.impacted
        ],
        "caused_by": incident.caused_by,
        "grouped": [key],
        "ack_code": (incident.ack_code or None) if kind in ("firing", "repeat") else None,
        "ack_url": ack_url if kind in ("firing", "repeat") else None,
        "acknowledged_by": incident.acked_by,
        "acknowledged_via": incident.ack_via or None if incident.acked_by else None,
        "ack_comment": incident.ack_comment if incident.acked_by else "",
        "message": message,
        "agent": plan.agent,
        "created_at": rfc3339(now),
    }
    payload["text"] = render(
        payload,
        kind,
        language=plan.language,
        timezone=plan.timezone,
        started_ts=incident.started_at,
        what=what_of(payload),
    )
    return payload


def what_of(payload: Mapping[str, Any]) -> str:
    """How people name the system: 'Socialtjänsten: Treserva'."""
    if payload.get("department_name"):
        return f"{payload['department_name']}: {payload['system_name']}"
    return str(payload["system_name"])


def impacted_entry(
    plan: Plan,
    key: tuple[str | None, str],
    incident: Incident | None,
    root_down: float,
    now: float,
) -> dict[str, Any]:
    """An impacted system with its own time left: its clock runs from its own incident."""
    unit = plan.units.get(key)
    down = max(0.0, now - incident.started_at) if incident is not None else root_down
    rto = unit.rto if unit else None
    mtpd = unit.mtpd if unit else None
    return {
        "department": key[0],
        "system": key[1],
        "department_name": (unit.department_name if unit else "") or None,
        "system_name": unit.system_name if unit else key[1],
        "incident_id": incident.id if incident is not None else None,
        "downtime_seconds": round(down, 3),
        "rto_seconds": rto,
        "mtpd_seconds": mtpd,
        "rto_remaining_seconds": _remaining(rto, down),
        "mtpd_remaining_seconds": _remaining(mtpd, down),
        "fallback": unit.fallback if unit else "",
    }
