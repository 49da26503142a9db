"""Who is on duty: rotations with a handoff at a local time, and notify targets.

Pure: every function takes the instant. Handoffs are wall-clock times in
agent.timezone, so "MON 08:00" is 08:00 local in winter and in summer; a
handoff at a time the spring change skips happens when the clock jumps over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.people_config import DAY, Person, Rotation

PERSON = "person:"
ROTATION = "rotation:"
# An incident's `notified` entry for a person: "channel#person".
SEP = "#"
_LOOKAHEAD = 64  # changes examined to find the next different person


@dataclass(frozen=True, slots=True)
class Duty:
    person: str
    until: float  # the next change of who is on duty
    next_person: str


def _instant(day: date, at: time, tz: ZoneInfo) -> float:
    wall = datetime.combine(day, at, tzinfo=tz)
    ts = wall.timestamp()
    if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return ts  # exists (a repeated autumn hour: its first occurrence, fold=0)
    # Skipped in spring: the handoff happens as the clock jumps over it (like cron).
    lo, hi = int(wall.replace(fold=1).timestamp()), int(ts)
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _first_handoff(rotation: Rotation) -> date:
    weekday, _, _ = rotation.handoff_parts
    first = date.fromisoformat(rotation.start)
    if weekday is not None:
        first += timedelta(days=(weekday - first.weekday()) % 7)
    return first


def _period(rotation: Rotation, tz: ZoneInfo, ts: float) -> tuple[int, float]:
    """(index of the handoff in force at ts, when the next handoff is)."""
    _, hour, minute = rotation.handoff_parts
    at = time(hour, minute)
    days = int(rotation.every // DAY)
    first = _first_handoff(rotation)
    local = datetime.fromtimestamp(ts, tz).date()
    k = (local - first).days // days
    if _instant(first + timedelta(days=k * days), at, tz) > ts:
        k -= 1
    return k, _instant(first + timedelta(days=(k + 1) * days), at, tz)


def _override_at(rotation: Rotation, tz: ZoneInfo, ts: float) -> str | None:
    for o in rotation.overrides:
        if o.start.replace(tzinfo=tz).timestamp() <= ts < o.end.replace(tzinfo=tz).timestamp():
            return o.person
    return None


def person_at(rotation: Rotation, timezone: str, ts: float) -> str:
    tz = ZoneInfo(timezone)
    override = _override_at(rotation, tz, ts)
    if override is not None:
        return override
    k, _ = _period(rotation, tz, ts)
    return rotation.members[k % len(rotation.members)]


def _next_change(rotation: Rotation, tz: ZoneInfo, ts: float) -> float:
    _, handoff = _period(rotation, tz, ts)
    edges = [handoff]
    for o in rotation.overrides:
        for edge in (o.start, o.end):
            t = edge.replace(tzinfo=tz).timestamp()
            if t > ts:
                edges.append(t)
    return min(edges)


def on_duty(rotation: Rotation, timezone: str, ts: float) -> Duty:
    """Who is on duty at ts, until when, and who takes over then."""
    tz = ZoneInfo(timezone)
    until = _first_change(rotation, tz, ts)
    return Duty(person_at(rotation, timezone, ts), until, person_at(rotation, timezone, until))


def _first_change(rotation: Rotation, tz: ZoneInfo, ts: float) -> float:
    """The end of this person's duty: the first change to someone else (or the next handoff)."""
    person = person_at(rotation, str(tz.key), ts)
    at = ts
    for _ in range(_LOOKAHEAD):
        at = _next_change(rotation, tz, at)
        if person_at(rotation, str(tz.key), at) != person:
            return at
    return _next_change(rotation, tz, ts)


def resolve(
    entry: str,
    people: Mapping[str, Person],
    rotations: Mapping[str, Rotation],
    timezone: str,
    ts: float,
) -> list[str]:
    """A notify entry as targets: a channel stays itself; a person (or whoever a
    rotation has on duty at ts) becomes "channel#person" for each of their `via`."""
    if entry.startswith(ROTATION):
        rotation = rotations.get(entry.removeprefix(ROTATION))
        if rotation is None:
            return []
        entry = PERSON + person_at(rotation, timezone, ts)
    if entry.startswith(PERSON):
        name = entry.removeprefix(PERSON)
        person = people.get(name)
        if person is None:
            return []
        return [f"{channel}{SEP}{name}" for channel in person.via]
    return [entry]


def split_target(target: str) -> tuple[str, str | None]:
    channel, sep, person = target.partition(SEP)
    return channel, (person if sep else None)


def recipient(name: str, person: Person) -> dict[str, str | None]:
    return {"id": name, "name": person.name or name, "phone": person.phone, "email": person.email}


def oncall_document(
    people: Mapping[str, Person], rotations: Mapping[str, Rotation], timezone: str, ts: float
) -> dict[str, Any]:
    """Who is on duty in each rotation at ts and who is next (`vaktpost oncall --format
    json`, GET /api/v1/oncall). Names only: phone numbers stay in the config."""
    from datetime import UTC

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def who(name: str) -> dict[str, str]:
        person = people.get(name)
        return {"id": name, "name": (person.name if person else "") or name}

    out = []
    for name, rotation in sorted(rotations.items()):
        duty = on_duty(rotation, timezone, ts)
        out.append(
            {
                "rotation": name,
                "on_duty": who(duty.person),
                "until": stamp(duty.until),
                "next": who(duty.next_person),
            }
        )
    return {"at": stamp(ts), "timezone": timezone, "rotations": out}
