"""Silences and maintenance windows: do they mute an incident at a moment?

Both only ever mute notifications; incidents, steps and metrics go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from fnmatch import fnmatchcase

from agent.config import Maintenance
from alerting.model import Incident, Silence
from alerting.plan import Plan
from core.cron import cron_schedule

log = logging.getLogger("vaktpost.maintenance")

# A window that cannot be evaluated is logged at most this often (engine clock).
_REPORT_EVERY = 3600.0
_reported: dict[tuple[str, float, str, str], float] = {}


def in_window(window: Maintenance, timezone: str, now: float) -> bool:
    """True when the window opened (cron, local time) less than `duration` ago.

    The duration is counted in real seconds. A window that cannot be evaluated
    is closed: it is logged, and alerting goes on.
    """
    try:
        fire = cron_schedule(window.cron, timezone).next_after(now - window.duration)
    except Exception as exc:  # one bad window must never stop the engine for the others
        _report(window, timezone, now, exc)
        return False
    return fire is not None and fire <= now


def next_window_edge(window: Maintenance, timezone: str, now: float) -> float | None:
    """The next moment after `now` a window opens or closes (for the engine's wake-up)."""
    try:
        schedule = cron_schedule(window.cron, timezone)
        edges = [t for t in (schedule.next_after(now),) if t is not None]
        recent = schedule.next_after(now - window.duration)
    except Exception as exc:  # as in in_window: no wake-up from it, nothing else stops
        _report(window, timezone, now, exc)
        return None
    if recent is not None and recent <= now:
        edges.append(recent + window.duration)
    return min(edges) if edges else None


def _report(window: Maintenance, timezone: str, now: float, exc: Exception) -> None:
    key = (window.cron, window.duration, window.comment, timezone)
    last = _reported.get(key)
    if last is not None and 0 <= now - last < _REPORT_EVERY:
        return
    _reported[key] = now
    name = f"{window.comment!r} " if window.comment else ""
    log.error(
        "maintenance window %s(cron %r) cannot be evaluated, so it mutes nothing: %s: %s",
        name,
        window.cron,
        type(exc).__name__,
        exc,
    )


def matches(matchers: dict[str, str], incident: Incident, plan: Plan) -> bool:
    """Every matcher must match; `check` and labels match any of the incident's checks."""
    checks = incident.checks or list(plan.units[(incident.department, incident.system)].checks)
    for key, glob in matchers.items():
        if key == "department":
            ok = fnmatchcase(incident.department or "", glob)
        elif key == "system":
            ok = fnmatchcase(incident.system, glob)
        elif key == "check":
            ok = any(fnmatchcase(c, glob) for c in checks)
        else:
            ok = any(
                fnmatchcase(spec.labels[key], glob)
                for c in checks
                if (spec := plan.checks.get(c)) is not None and key in spec.labels
            )
        if not ok:
            return False
    return True


def muted_by(
    incident: Incident,
    plan: Plan,
    silences: Iterable[Silence],
    windows: Iterable[Maintenance],
    now: float,
) -> str | None:
    """Why the incident is muted now ('silence 3', 'maintenance: patch window'), or None."""
    for silence in silences:
        if silence.active(now) and matches(silence.matchers, incident, plan):
            return f"silence {silence.id}"
    for window in windows:
        if matches(dict(window.match), incident, plan) and in_window(window, plan.timezone, now):
            return f"maintenance: {window.comment or window.cron}"
    return None
