"""Silences and maintenance windows: do they mute an incident at a moment?

Both only ever mute notifications; incidents, steps and metrics go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from agent.config import Maintenance
from alerting.model import Incident, Silence
from alerting.plan import Plan

_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _cron_weekdays(field: str) -> str:
    # APScheduler 3 counts 0 as Monday; crontab (and our docs) count 0 and 7 as Sunday.
    return re.sub(r"\d+", lambda m: _DOW_NAMES[int(m.group()) % 8], field)


@lru_cache(maxsize=256)
def cron_trigger(expr: str, timezone: str) -> Any:
    minute, hour, day, month, dow = expr.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_cron_weekdays(dow),
        timezone=ZoneInfo(timezone),
    )


def in_window(window: Maintenance, timezone: str, now: float) -> bool:
    """True when a window started (cron, local time) no longer than `duration` ago.

    Fire times come from the cron trigger in the agent's time zone, so DST
    changes shift them correctly; the duration is counted in real seconds.
    """
    tz = ZoneInfo(timezone)
    start = datetime.fromtimestamp(now - window.duration, tz)
    trigger = cron_trigger(window.cron, timezone)
    fire = trigger.get_next_fire_time(None, start)
    return fire is not None and fire.timestamp() <= now


def next_window_edge(window: Maintenance, timezone: str, now: float) -> float | None:
    """The next moment a window opens or closes after `now` (for the engine's wake-up)."""
    tz = ZoneInfo(timezone)
    trigger = cron_trigger(window.cron, timezone)
    edges: list[float] = []
    nxt = trigger.get_next_fire_time(None, datetime.fromtimestamp(now, tz) + timedelta(seconds=1))
    if nxt is not None:
        edges.append(nxt.timestamp())
    recent = trigger.get_next_fire_time(None, datetime.fromtimestamp(now - window.duration, tz))
    if recent is not None and recent.timestamp() + window.duration > now:
        edges.append(recent.timestamp() + window.duration)
    return min(edges) if edges else None


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
