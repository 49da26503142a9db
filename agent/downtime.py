"""Downtime of a system as interval arithmetic: incidents minus maintenance windows.

Pure: history's daily availability (GET /api/v1/history), the console's bars and
the monthly report all count downtime here, so they agree to the second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import Config, Maintenance
from core.cron import cron_schedule

Interval = tuple[float, float]
MAX_WINDOWS = 10_000  # a window every minute for a week: more is a config mistake


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def clip(intervals: Iterable[Interval], since: float, until: float) -> list[Interval]:
    return merge((max(a, since), min(b, until)) for a, b in intervals)


def subtract(intervals: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    holes = merge(holes)
    for a, b in merge(intervals):
        start = a
        for h0, h1 in holes:
            if h1 <= start or h0 >= b:
                continue
            if h0 > start:
                out.append((start, h0))
            start = max(start, h1)
        if start < b:
            out.append((start, b))
    return out


def total(intervals: Iterable[Interval]) -> float:
    return sum(b - a for a, b in intervals)


def window_matches(
    window: Maintenance, config: Config, department: str | None, system: str
) -> bool:
    """Does a maintenance window cover this system (department, system or one of its checks)?"""
    checks: tuple[str, ...] = ()
    for dept in config.departments:
        if dept.id == department:
            for s in dept.systems:
                if s.id == system:
                    checks = s.checks
    for key, glob in window.match.items():
        if key == "department":
            if department is None or not fnmatchcase(department, glob):
                return False
        elif key == "system":
            if not fnmatchcase(system, glob):
                return False
        elif key == "check":
            names = checks or (system,)
            if not any(fnmatchcase(c, glob) for c in names):
                return False
        else:
            return False  # label matchers: no labels on a system, so not this one
    return True


def maintenance_intervals(
    config: Config, department: str | None, system: str, since: float, until: float
) -> list[Interval]:
    out: list[Interval] = []
    for window in config.maintenance:
        if not window_matches(window, config, department, system):
            continue
        schedule = cron_schedule(window.cron, config.agent.timezone)
        at = schedule.next_after(since - window.duration)
        for _ in range(MAX_WINDOWS):
            if at is None or at >= until:
                break
            out.append((at, at + window.duration))
            at = schedule.next_after(at)
    return clip(out, since, until)


def local_days(first: date, count: int, timezone: str) -> list[tuple[date, float, float]]:
    """(day, start, end) in unix seconds of `count` local days from `first` (DST-true)."""
    zone = ZoneInfo(timezone)
    out = []
    for n in range(count):
        day = first + timedelta(days=n)
        start = datetime.combine(day, time(), zone).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(), zone).timestamp()
        out.append((day, start, end))
    return out


def daily(
    down: Sequence[Interval],
    maintenance: Sequence[Interval],
    breaches: Sequence[tuple[float, str]],
    days: Sequence[tuple[date, float, float]],
    now: float,
) -> list[dict[str, Any]]:
    """Per day: downtime outside maintenance, maintenance time, availability, breaches."""
    counted = subtract(down, maintenance)
    out = []
    for day, start, end in days:
        end_seen = min(end, now)
        span = max(0.0, end_seen - start)
        downtime = total(clip(counted, start, end_seen))
        maint = total(clip(maintenance, start, end_seen))
        base = span - maint
        out.append(
            {
                "day": day.isoformat(),
                "downtime_seconds": round(downtime, 3),
                "maintenance_seconds": round(maint, 3),
                "availability": None if base <= 0 else round(1 - downtime / base, 6),
                "rto_breached": any(k == "rto" and start <= t < end for t, k in breaches),
                "mtpd_breached": any(k == "mtpd" and start <= t < end for t, k in breaches),
            }
        )
    return out
