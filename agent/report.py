"""The monthly continuity report (`vaktpost report`): pure arithmetic over what the
store kept — incidents, check status changes — and the config.

`build_report` returns the JSON document (docs/report.md); the renderers turn
that one document into Markdown and printable HTML, so the formats agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent import downtime
from agent.config import Config
from agent.state.interface import IncidentSpan

REPORT_VERSION = 1
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def parse_month(raw: str) -> date:
    match = _MONTH.fullmatch(raw)
    if match is None:
        raise ValueError(f"--month {raw!r}: use YYYY-MM, e.g. 2026-11")
    return date(int(match[1]), int(match[2]), 1)


def month_bounds(first: date, timezone: str) -> tuple[float, float]:
    zone = ZoneInfo(timezone)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone).timestamp()
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=zone).timestamp()


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_seconds(changes: Sequence[dict[str, Any]], since: float, until: float) -> float:
    """Time in [since, until) the check's status was ok (ready), from its status changes.

    Before the first recorded change the state is unknown, which is not ready.
    """
    total = 0.0
    ordered = sorted(changes, key=lambda c: c["at"])
    for n, change in enumerate(ordered):
        if change["status"] != "ok":
            continue
        end = ordered[n + 1]["at"] if n + 1 < len(ordered) else until
        total += max(0.0, min(end, until) - max(change["at"], since))
    return total


def _incident(
    span: IncidentSpan, rto: float | None, mtpd: float | None, now: float
) -> dict[str, Any]:
    end = span.resolved_at if span.resolved_at is not None else now
    duration = end - span.started_at
    return {
        "id": span.id,
        "system": span.system,
        "started_at": rfc3339(span.started_at),
        "resolved_at": rfc3339(span.resolved_at),
        "duration_seconds": round(duration, 3),
        "root_cause": span.data.get("root") or None,
        "caused_by": span.data.get("caused_by"),
        "rto_breached": rto is not None and duration > rto,
        "mtpd_breached": mtpd is not None and duration > mtpd,
        "time_to_first_ack_seconds": None
        if span.first_ack_at is None
        else round(span.first_ack_at - span.started_at, 3),
    }


def _by_time(entry: dict[str, Any]) -> tuple[str, str]:
    return (str(entry["at"]), str(entry["system"]))


def _restore_test(test: dict[str, Any], system: str, rto: float | None) -> dict[str, Any]:
    seconds = test.get("seconds")
    return {
        "system": system,
        "check": test["check"],
        "at": rfc3339(test["at"]),
        "passed": test["ok"],
        "duration_seconds": seconds,
        "rto_seconds": rto,
        # A restore that takes longer than the RTO cannot meet it on the day.
        "within_rto": None if seconds is None or rto is None else bool(seconds <= rto),
    }


def build_report(
    config: Config,
    month: date,
    spans: Sequence[IncidentSpan],
    changes: Sequence[dict[str, Any]],
    now: float,
    department: str | None = None,
    drills: Sequence[dict[str, Any]] = (),
    restore_tests: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report document for one month (to `now`, if the month is still running).

    `drills` are the month's drill runs (alerting/drills.py DrillRun.document); drills
    belong to no department, so they are listed once, beside the departments.
    """
    tz = config.agent.timezone
    start, end = month_bounds(month, tz)
    seen_end = max(start, min(end, now))
    by_check: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_check.setdefault(change["check"], []).append(change)
    departments = []
    for dept in config.departments:
        if department is not None and dept.id != department:
            continue
        systems, incidents = [], []
        restores: list[dict[str, Any]] = []
        for system in dept.systems:
            mine = [s for s in spans if s.department == dept.id and s.system == system.id]
            down = downtime.clip(
                ((s.started_at, s.resolved_at if s.resolved_at is not None else now) for s in mine),
                start,
                seen_end,
            )
            maint = downtime.maintenance_intervals(config, dept.id, system.id, start, seen_end)
            counted = downtime.total(downtime.subtract(down, maint))
            maint_total = downtime.total(maint)
            base = seen_end - start - maint_total
            backups = []
            for ref in system.backups:
                ready = ready_seconds(by_check.get(ref.check, []), start, seen_end)
                span = seen_end - start
                backups.append(
                    {
                        "check": ref.check,
                        "rpo_seconds": ref.rpo,
                        "ready_seconds": round(ready, 3),
                        "ready_share": None if span <= 0 else round(ready / span, 6),
                    }
                )
            systems.append(
                {
                    "id": system.id,
                    "name": system.title,
                    "rto_seconds": system.rto,
                    "mtpd_seconds": system.mtpd,
                    "downtime_seconds": round(counted, 3),
                    "maintenance_seconds": round(maint_total, 3),
                    "availability": None if base <= 0 else round(1 - counted / base, 6),
                    "incidents": len(mine),
                    "backups": backups,
                }
            )
            incidents += [_incident(s, system.rto, system.mtpd, now) for s in mine]
            for ref in system.backups:
                restores += [
                    _restore_test(t, system.id, system.rto)
                    for t in restore_tests
                    if t["check"] == ref.check
                ]
        incidents.sort(key=lambda i: (i["started_at"], i["id"]))
        restores.sort(key=_by_time)
        departments.append(
            {
                "id": dept.id,
                "name": dept.title,
                "systems": systems,
                "incidents": incidents,
                "restore_tests": restores,
                "drills": [],
            }
        )
    return {
        "version": REPORT_VERSION,
        "agent": config.agent.name,
        "month": f"{month.year:04d}-{month.month:02d}",
        "timezone": tz,
        "period": {
            "start": rfc3339(start),
            "end": rfc3339(end),
            "seconds": round(end - start, 3),
            "observed_seconds": round(seen_end - start, 3),
        },
        "generated_at": rfc3339(now),
        "departments": departments,
        "drills": list(drills),
    }
