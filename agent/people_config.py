"""People, on-call rotations and channel drills (DESIGN.md "People, on-call rotations").

Frozen config models only; who is on duty at an instant is alerting/rotation.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.base import Duration, Name
from core.cron import parse_cron

_FROZEN = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_HANDOFF = re.compile(r"^(?:(MON|TUE|WED|THU|FRI|SAT|SUN)\s+)?([01]?\d|2[0-3]):([0-5]\d)$")
DAY = 86400.0


class Person(BaseModel):
    model_config = _FROZEN
    name: str = ""
    phone: str | None = None
    email: str | None = None
    via: Annotated[tuple[Name, ...], Field(min_length=1)]


def parse_local(value: str) -> datetime:
    """A wall-clock time in agent.timezone: 2026-12-24T08:00 (no offset)."""
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid time {value!r}: use 2026-12-24T08:00 (local time)") from None
    if stamp.tzinfo is not None:
        raise ValueError(f"{value!r}: give local time in agent.timezone, without an offset")
    return stamp


class Override(BaseModel):
    """Someone else on duty for a while: a holiday, a swap."""

    model_config = _FROZEN
    person: Name
    from_: Annotated[str, Field(alias="from")]
    to: str

    @field_validator("from_", "to")
    @classmethod
    def _local(cls, value: str) -> str:
        parse_local(value)
        return value

    @model_validator(mode="after")
    def _order(self) -> Override:
        if parse_local(self.to) <= parse_local(self.from_):
            raise ValueError(f"override of {self.person}: `to` must be after `from`")
        return self

    @property
    def start(self) -> datetime:
        return parse_local(self.from_)

    @property
    def end(self) -> datetime:
        return parse_local(self.to)


class Rotation(BaseModel):
    model_config = _FROZEN
    members: tuple[Name, ...]
    # "MON 08:00" (weekly) or "08:00" (daily), in agent.timezone.
    handoff: str = "MON 08:00"
    every: Annotated[Duration, Field(gt=0)] = 7 * DAY
    # The first handoff on or after this date hands to members[0].
    start: str = "2026-01-05"
    overrides: tuple[Override, ...] = ()

    @field_validator("members")
    @classmethod
    def _members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        if not members:
            raise ValueError("a rotation needs at least one member")
        return members

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        if not _HANDOFF.match(value.strip().upper()):
            raise ValueError(f"invalid handoff {value!r}: use 'MON 08:00' or '08:00'")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: float) -> float:
        if value % DAY or value > 366 * DAY:
            raise ValueError("every: whole days (1d, 1w, 2w), at most a year")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"invalid start {value!r}: use a date like 2026-01-05") from None
        return value

    @model_validator(mode="after")
    def _weekday_for_weeks(self) -> Rotation:
        day, _, _ = self.handoff_parts
        if day is None and self.every % (7 * DAY) == 0:
            raise ValueError("a weekly rotation hands off on a day: use e.g. 'MON 08:00'")
        return self

    @property
    def handoff_parts(self) -> tuple[int | None, int, int]:
        """(weekday 0=Monday or None, hour, minute)."""
        match = _HANDOFF.match(self.handoff.strip().upper())
        assert match is not None
        day = DAYS.index(match.group(1)) if match.group(1) else None
        return day, int(match.group(2)), int(match.group(3))


class Drill(BaseModel):
    """A scheduled message that must be acknowledged: proof a path reaches a person."""

    model_config = _FROZEN
    name: Name
    notify: Annotated[tuple[str, ...], Field(min_length=1)]
    # In agent.timezone, read by core/cron.py like maintenance windows.
    cron: str
    ack_within: Annotated[Duration, Field(gt=0, le=7 * DAY)] = 900.0
    message: str = ""  # a line of its own in the drill's text

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return parse_cron(value)
