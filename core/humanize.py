"""Numbers in the plain words department heads read: "31 h", "1.2 MiB"."""

from __future__ import annotations

from datetime import UTC, datetime


def _num(value: float) -> str:
    # One decimal below 10 units ("1.5 h"), whole numbers above ("31 h").
    if value < 10 and round(value, 1) != round(value):
        return f"{value:.1f}"
    return f"{round(value):d}"


def duration(seconds: float) -> str:
    """31 h, 45 min, 2.5 d: the unit a person would pick."""
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{round(s):d} s"
    if s < 3600:
        return f"{sign}{_num(s / 60)} min"
    if s < 72 * 3600:
        return f"{sign}{_num(s / 3600)} h"
    return f"{sign}{_num(s / 86400)} d"


def size(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{_num(n / scale)} {unit}"
    return f"{round(n):d} B"


def ago(now: float, then: float) -> str:
    return f"{duration(max(0.0, now - then))} ago"


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
