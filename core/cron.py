"""Cron expressions with Vixie cron semantics, in local time: the one parser.

`parse_cron` is what `vaktpost validate` (the config model) calls and what
`CronSchedule`, which the engine evaluates maintenance windows with, calls
too: an expression validate accepts is one the engine runs.

The fire times come from cronsim, which follows Debian's (Vixie) cron: five
fields, names (SUN-THU, JAN), ranges and steps, 0 and 7 for Sunday, and when
day-of-month and day-of-week are both restricted (neither starts with `*`)
either matching is enough. Across DST changes a job at a fixed local time
fires once: a time skipped in spring fires when the clock jumps over it, a
time repeated in autumn fires at its first occurrence; a job whose minute or
hour field starts with `*` fires on real time, so in both changes it neither
skips nor doubles an hour.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT (0 and 7: Sunday)")
# cronsim also reads Quartz's L, W and #; they are not cron, so they are not accepted.
_VALUE = r"(?:\d+|[A-Za-z]{3})"
_TERM = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d+)?"
_FIELD = re.compile(rf"^{_TERM}(?:,{_TERM})*$")
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


def parse_cron(expr: str) -> str:
    """The expression if it is valid cron; else ValueError with a one-line reason."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("invalid cron: need 5 fields (minute hour day month weekday)")
    for name, allowed, field in zip(_FIELDS, _RANGES, fields, strict=True):
        if not _FIELD.match(field):
            raise ValueError(f"invalid cron: bad {name} {field!r} (use {allowed})")
    try:
        it = CronSim(expr, _REFERENCE)
    except CronSimError as exc:
        raise ValueError(f"invalid cron: {_reason(str(exc), fields)}") from None
    try:
        next(it)
    except StopIteration:  # e.g. 31 in a month that never has it
        raise ValueError("invalid cron: it never fires") from None
    return expr


def _reason(message: str, fields: list[str]) -> str:
    name = message.removeprefix("Bad ")
    if name == "day-of-month" and _valid(" ".join([*fields[:3], "*", fields[4]])):
        return f"day-of-month {fields[2]!r} never comes in month {fields[3]!r}"
    if name in _FIELDS:
        i = _FIELDS.index(name)
        return f"bad {name} {fields[i]!r} (use {_RANGES[i]})"
    return message


def _valid(expr: str) -> bool:
    try:
        CronSim(expr, _REFERENCE)
    except CronSimError:
        return False
    return True


class CronSchedule:
    """One expression's fire times in one time zone, as POSIX timestamps.

    The engine asks for the same answer at every tick (the first fire after
    `now - duration` changes only once per fire), so the last answer is kept
    with the span of inputs it holds for.
    """

    def __init__(self, expr: str, timezone: str) -> None:
        self.expr = parse_cron(expr)
        self.tz = ZoneInfo(timezone)
        # (lo, fire): no fire lies in (lo, fire), so fire follows every t in [lo, fire).
        self._span: tuple[float, float] | None = None

    def next_after(self, ts: float) -> float | None:
        """The first fire time strictly after `ts`, or None if there is none in 50 years."""
        span = self._span
        if span is not None and span[0] <= ts < span[1]:
            return span[1]
        fire = self._compute(ts)
        if fire is not None:
            self._span = (ts, fire)
        return fire

    def _compute(self, ts: float) -> float | None:
        # cronsim counts whole seconds and yields fires strictly after its start.
        start = datetime.fromtimestamp(int(ts // 1), self.tz)
        it = CronSim(self.expr, start)
        for fire in it:
            # A local time repeated in autumn maps to its first occurrence, which
            # can lie before a start inside the repeated hour: skip it.
            if fire.timestamp() > ts:
                return fire.timestamp()
        return None


@lru_cache(maxsize=512)
def cron_schedule(expr: str, timezone: str) -> CronSchedule:
    """The shared schedule of (expression, time zone)."""
    return CronSchedule(expr, timezone)
