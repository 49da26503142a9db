"""Rotations on an injected clock: who is on duty, handoffs at local time across both
2026 DST changes in Europe/Stockholm, overrides, a rotation of one; and the engine
paging whoever is on duty when a step fires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agent.people_config import Rotation
from alerting.engine import IncidentEngine
from alerting.rotation import on_duty, person_at
from tests.alerting_fixtures import Timeline, base_config

TZ = "Europe/Stockholm"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def weekly(**extra: object) -> Rotation:
    return Rotation.model_validate(
        {"members": ["anna", "bertil"], "handoff": "MON 08:00", "every": "1w", **extra}
    )


def daily(**extra: object) -> Rotation:
    return Rotation.model_validate(
        {"members": ["anna", "bertil", "cecilia"], "handoff": "08:00", "every": "1d", **extra}
    )


@pytest.mark.parametrize(
    ("at", "person"),
    [
        # Monday 2026-03-23 08:00 CET is 07:00 UTC (weeks since 2026-01-05: 11 -> bertil).
        (utc(2026, 3, 23, 6, 59, 59), "anna"),
        (utc(2026, 3, 23, 7, 0), "bertil"),
        # Spring change on Sunday 29 March: the next Monday's 08:00 is CEST, 06:00 UTC.
        (utc(2026, 3, 30, 5, 59, 59), "bertil"),
        (utc(2026, 3, 30, 6, 0), "anna"),
        # Autumn change on Sunday 25 October: Monday 26 October 08:00 is CET, 07:00 UTC.
        (utc(2026, 10, 26, 6, 0), "bertil"),
        (utc(2026, 10, 26, 6, 59, 59), "bertil"),
        (utc(2026, 10, 26, 7, 0), "anna"),
    ],
)
def test_weekly_handoff_at_local_time_across_dst(at: float, person: str) -> None:
    assert person_at(weekly(), TZ, at) == person


@pytest.mark.parametrize(
    ("at", "person"),
    [
        # 2026-03-28 (Saturday, CET): 08:00 local is 07:00 UTC.
        (utc(2026, 3, 28, 6, 59), "daily-before"),
        (utc(2026, 3, 28, 7, 0), "daily-28"),
        # 2026-03-29, the day of the spring change: 08:00 CEST is 06:00 UTC.
        (utc(2026, 3, 29, 5, 59), "daily-28"),
        (utc(2026, 3, 29, 6, 0), "daily-29"),
        # 2026-10-25, the day of the autumn change: 08:00 CET is 07:00 UTC.
        (utc(2026, 10, 25, 6, 59), "daily-24"),
        (utc(2026, 10, 25, 7, 0), "daily-25"),
    ],
)
def test_daily_handoff_at_local_time_across_dst(at: float, person: str) -> None:
    rotation = daily()
    members = rotation.members
    # Days since 2026-01-05 pick the member: 28 March is day 82, 29 March day 83, ...
    expected = {
        "daily-before": members[81 % 3],
        "daily-28": members[82 % 3],
        "daily-29": members[83 % 3],
        "daily-24": members[292 % 3],
        "daily-25": members[293 % 3],
    }[person]
    assert person_at(rotation, TZ, at) == expected


def test_a_handoff_in_the_skipped_hour_happens_when_the_clock_jumps() -> None:
    rotation = daily(handoff="02:30")
    # 02:30 does not exist on 29 March: the handoff is at the jump, 01:00 UTC (03:00 CEST).
    before = person_at(rotation, TZ, utc(2026, 3, 29, 0, 59, 59))
    after = person_at(rotation, TZ, utc(2026, 3, 29, 1, 0))
    assert before != after
    assert on_duty(rotation, TZ, utc(2026, 3, 28, 12, 0)).until == utc(2026, 3, 29, 1, 0)


def test_on_duty_says_until_when_and_who_is_next() -> None:
    duty = on_duty(weekly(), TZ, utc(2026, 3, 25, 12, 0))
    assert (duty.person, duty.next_person) == ("bertil", "anna")
    assert duty.until == utc(2026, 3, 30, 6, 0)


def test_override_for_christmas_and_back() -> None:
    rotation = weekly(
        overrides=[{"person": "cecilia", "from": "2026-12-24T08:00", "to": "2026-12-27T08:00"}]
    )
    # Week of 21 December (50 weeks since 5 January): anna.
    assert person_at(rotation, TZ, utc(2026, 12, 24, 6, 59)) == "anna"
    assert person_at(rotation, TZ, utc(2026, 12, 24, 7, 0)) == "cecilia"
    assert person_at(rotation, TZ, utc(2026, 12, 27, 6, 59)) == "cecilia"
    assert person_at(rotation, TZ, utc(2026, 12, 27, 7, 0)) == "anna"
    duty = on_duty(rotation, TZ, utc(2026, 12, 23, 12, 0))
    assert (duty.person, duty.until, duty.next_person) == (
        "anna",
        utc(2026, 12, 24, 7, 0),
        "cecilia",
    )


def test_a_rotation_of_one_is_always_that_person() -> None:
    rotation = Rotation.model_validate({"members": ["anna"], "handoff": "MON 08:00"})
    for at in (utc(2026, 3, 29, 1, 30), utc(2026, 10, 25, 1, 30), utc(2026, 7, 1)):
        duty = on_duty(rotation, TZ, at)
        assert (duty.person, duty.next_person) == ("anna", "anna")
        assert duty.until > at


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"members": []}, "at least one member"),
        ({"members": ["a"], "handoff": "08:00"}, "weekly rotation hands off on a day"),
        ({"members": ["a"], "handoff": "MONDAY 8"}, "invalid handoff"),
        ({"members": ["a"], "every": "36h"}, "whole days"),
        (
            {"members": ["a"], "overrides": [{"person": "a", "from": "2026-12-24", "to": "x"}]},
            "invalid time",
        ),
        (
            {
                "members": ["a"],
                "overrides": [
                    {"person": "a", "from": "2026-12-24T08:00", "to": "2026-12-24T07:00"}
                ],
            },
            "`to` must be after `from`",
        ),
    ],
)
def test_bad_rotations_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Rotation.model_validate(data)


PEOPLE = """
people:
  anna: {name: Anna Lind, phone: "+46701234567", via: [oncall, crisis]}
  bertil: {name: Bertil Ek, phone: "+46707654321", via: [oncall]}
rotations:
  tib: {members: [anna, bertil], handoff: "MON 08:00", every: 1w}
"""


def test_the_engine_pages_whoever_is_on_duty_when_the_step_fires() -> None:
    config = base_config(PEOPLE)
    steps = [s.model_dump() for s in config.departments[0].escalation]
    steps[1]["notify"] = ("rotation:tib",)
    steps[1]["after"] = {"seconds": 4 * 3600.0}
    dept = config.departments[0].model_copy(
        update={"escalation": tuple(type(config.departments[0].escalation[0])(**s) for s in steps)}
    )
    config = config.model_copy(update={"departments": (dept,)})
    # Sunday 29 March 2026 23:00 CEST: bertil's week; anna's begins at 08:00 Monday.
    start = utc(2026, 3, 29, 21, 0)
    tl = Timeline(IncidentEngine(config), start)
    tl.result("web", "critical", 2)
    tl.advance_to(11 * 3600)
    paged = [n for n in tl.notifications if n.payload.get("recipient")]
    # Step 1 fired at 03:00 local: bertil, through his one channel.
    assert [(n.channel, n.payload["recipient"]["id"]) for n in paged] == [("oncall", "bertil")]
    assert paged[0].payload["recipient"]["phone"] == "+46707654321"
    assert paged[0].dedup_key.endswith("/1/to-bertil")
    assert "oncall#bertil" in tl.engine.state.incidents[1].notified
    # Resolved: the person told it is down hears it is over, whoever is on duty now.
    tl.now = utc(2026, 3, 30, 9, 0)
    tl.result("web", "ok", 1)
    resolved = [n for n in tl.notifications if n.kind == "resolved"]
    assert ("oncall", "bertil") in {
        (n.channel, (n.payload.get("recipient") or {}).get("id")) for n in resolved
    }
