"""Maintenance cron: Vixie semantics, DST in Europe/Stockholm, one parser, never a stop.

Fire times are checked twice: against cronsim iterated directly (the reference
implementation of Debian cron) and against times worked out by hand.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import Maintenance
from agent.configload import ConfigError
from alerting.engine import IncidentEngine
from alerting.mute import in_window, next_window_edge
from core.cron import CronSchedule, cron_schedule, parse_cron
from tests.alerting_fixtures import Timeline, base_config
from tests.helpers import ROOT, VAKTPOST

STHLM = "Europe/Stockholm"
TZ = ZoneInfo(STHLM)
H = 3600.0
M = 60.0


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=TZ, fold=fold).timestamp()


def shown(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).strftime("%a %Y-%m-%d %H:%M%z")


def fires(expr: str, start: float, n: int) -> list[str]:
    schedule, out, t = CronSchedule(expr, STHLM), [], start
    for _ in range(n):
        nxt = schedule.next_after(t)
        assert nxt is not None
        out.append(shown(nxt))
        t = nxt
    return out


def reference(expr: str, start: float, n: int) -> list[str]:
    it = CronSim(expr, datetime.fromtimestamp(start, TZ))
    return [shown(next(it).timestamp()) for _ in range(n)]


# Sunday 1 March 2026, 00:00 (CET, far from DST).
MARCH = local(2026, 3, 1, 0, 0)

FIRES = [
    # the issue's expressions: every day of the week, written four ways
    ("0 22 * * 0-6", ["Sun 2026-03-01 22:00+0100", "Mon 2026-03-02 22:00+0100"]),
    ("0 22 * * SUN-SAT", ["Sun 2026-03-01 22:00+0100", "Mon 2026-03-02 22:00+0100"]),
    ("0 22 * * *", ["Sun 2026-03-01 22:00+0100", "Mon 2026-03-02 22:00+0100"]),
    ("0 22 * * 1-7", ["Sun 2026-03-01 22:00+0100", "Mon 2026-03-02 22:00+0100"]),
    # 7 is Sunday, like 0
    ("0 3 * * 7", ["Sun 2026-03-01 03:00+0100", "Sun 2026-03-08 03:00+0100"]),
    ("0 3 * * 0", ["Sun 2026-03-01 03:00+0100", "Sun 2026-03-08 03:00+0100"]),
    (
        "0 3 * * SUN-THU",
        [
            "Sun 2026-03-01 03:00+0100",
            "Mon 2026-03-02 03:00+0100",
            "Tue 2026-03-03 03:00+0100",
            "Wed 2026-03-04 03:00+0100",
            "Thu 2026-03-05 03:00+0100",
            "Sun 2026-03-08 03:00+0100",
        ],
    ),
    # */2 over 0-7: Sun, Tue, Thu, Sat
    (
        "0 3 * * */2",
        [
            "Sun 2026-03-01 03:00+0100",
            "Tue 2026-03-03 03:00+0100",
            "Thu 2026-03-05 03:00+0100",
            "Sat 2026-03-07 03:00+0100",
            "Sun 2026-03-08 03:00+0100",
        ],
    ),
    # 1-5/2: Mon, Wed, Fri, not every weekday
    (
        "0 3 * * 1-5/2",
        [
            "Mon 2026-03-02 03:00+0100",
            "Wed 2026-03-04 03:00+0100",
            "Fri 2026-03-06 03:00+0100",
            "Mon 2026-03-09 03:00+0100",
        ],
    ),
    # day-of-month and day-of-week both restricted: either (Fridays, and the 13th)
    (
        "0 0 13 * FRI",
        [
            "Fri 2026-03-06 00:00+0100",
            "Fri 2026-03-13 00:00+0100",
            "Fri 2026-03-20 00:00+0100",
            "Fri 2026-03-27 00:00+0100",
            "Fri 2026-04-03 00:00+0200",
            "Fri 2026-04-10 00:00+0200",
            "Mon 2026-04-13 00:00+0200",
        ],
    ),
    # ... but a field that starts with * makes it AND, as in Vixie cron
    ("0 0 13 * */1", ["Fri 2026-03-13 00:00+0100", "Mon 2026-04-13 00:00+0200"]),
    # names, lists, ranges with steps
    ("30 6 1 JAN,jul *", ["Wed 2026-07-01 06:30+0200", "Fri 2027-01-01 06:30+0100"]),
    ("*/20 8-9 2 3 *", ["Mon 2026-03-02 08:00+0100", "Mon 2026-03-02 08:20+0100"]),
    ("0 0 29 2 *", ["Tue 2028-02-29 00:00+0100"]),
    ("0 0 30,31 2,4 *", ["Thu 2026-04-30 00:00+0200", "Fri 2027-04-30 00:00+0200"]),
]


@pytest.mark.parametrize(("expr", "expected"), FIRES, ids=[f[0] for f in FIRES])
def test_fire_times_match_cron_and_cronsim(expr: str, expected: list[str]) -> None:
    assert fires(expr, MARCH - 1, len(expected)) == expected
    assert reference(expr, MARCH - 1, len(expected)) == expected


# 2026-03-29: 02:00 CET -> 03:00 CEST. 2026-10-25: 03:00 CEST -> 02:00 CET.
SPRING = local(2026, 3, 28, 12)
AUTUMN = local(2026, 10, 24, 12)
DST_FIRES = [
    # a fixed time inside the skipped hour fires when the clock jumps over it
    ("30 2 * * *", SPRING, ["Sun 2026-03-29 03:00+0200", "Mon 2026-03-30 02:30+0200"]),
    # ... and a fixed time inside the repeated hour fires once, the first time
    ("30 2 * * *", AUTUMN, ["Sun 2026-10-25 02:30+0200", "Mon 2026-10-26 02:30+0100"]),
    # hourly jobs follow real time: no 02:00 in spring, two 02:00 in autumn
    ("0 * 29 3 *", SPRING, ["Sun 2026-03-29 00:00+0100", "Sun 2026-03-29 01:00+0100",
                            "Sun 2026-03-29 03:00+0200"]),
    ("0 * 25 10 *", local(2026, 10, 25, 1, 30),
     ["Sun 2026-10-25 02:00+0200", "Sun 2026-10-25 02:00+0100", "Sun 2026-10-25 03:00+0100"]),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "start", "expected"), DST_FIRES)
def test_fire_times_across_both_dst_changes(expr: str, start: float, expected: list[str]) -> None:
    assert fires(expr, start, len(expected)) == expected
    assert reference(expr, start, len(expected)) == expected


def test_start_inside_the_repeated_hour_never_gets_a_fire_from_the_past() -> None:
    # 02:40 CET, the second 02:40 of the night: 02:45 CEST was an hour ago.
    second_pass = local(2026, 10, 25, 2, 40, fold=1)
    assert fires("45 2 * * *", second_pass, 1) == ["Mon 2026-10-26 02:45+0100"]


def window(cron: str, duration: float, comment: str = "w") -> Maintenance:
    return Maintenance(match={"check": "web"}, cron=cron, duration=duration, comment=comment)


IN_WINDOW = [
    # (cron, duration, instant, muted)
    ("0 22 * * 0-6", 2 * H, local(2026, 3, 4, 21, 59), False),
    ("0 22 * * 0-6", 2 * H, local(2026, 3, 4, 22, 0), True),
    ("0 22 * * 0-6", 2 * H, local(2026, 3, 4, 23, 59), True),
    ("0 22 * * 0-6", 2 * H, local(2026, 3, 5, 0, 0), False),  # closes at +duration
    ("0 22 * * 7", 3 * H, local(2026, 3, 9, 0, 30), True),  # Sunday night into Monday
    ("0 22 * * 7", 3 * H, local(2026, 3, 9, 23, 30), False),  # Monday night
    ("0 22 * * SUN-THU", 1 * H, local(2026, 3, 5, 22, 30), True),  # Thursday
    ("0 22 * * SUN-THU", 1 * H, local(2026, 3, 6, 22, 30), False),  # Friday
    ("0 22 * * */2", 1 * H, local(2026, 3, 3, 22, 30), True),  # Tuesday
    ("0 22 * * */2", 1 * H, local(2026, 3, 4, 22, 30), False),  # Wednesday
    ("0 22 * * 1-5/2", 1 * H, local(2026, 3, 4, 22, 30), True),  # Wednesday
    ("0 22 * * 1-5/2", 1 * H, local(2026, 3, 5, 22, 30), False),  # Thursday
    ("0 0 13 * FRI", 1 * H, local(2026, 4, 13, 0, 30), True),  # a Monday, the 13th
    ("0 0 13 * FRI", 1 * H, local(2026, 4, 10, 0, 30), True),  # a Friday, the 10th
    ("0 0 13 * FRI", 1 * H, local(2026, 4, 14, 0, 30), False),
    # spring: 01:00 CET + 2 real hours = 04:00 CEST, not 03:00
    ("0 1 * * *", 2 * H, local(2026, 3, 29, 3, 30), True),
    ("0 1 * * *", 2 * H, local(2026, 3, 29, 4, 0), False),
    # spring: 02:30 does not exist; the window opens at 03:00 CEST
    ("30 2 * * *", 1 * H, local(2026, 3, 29, 3, 30), True),
    ("30 2 * * *", 1 * H, local(2026, 3, 29, 4, 0), False),
    # autumn: 02:30 CEST + 1 real hour = 02:30 CET; it does not open again at 02:30 CET
    ("30 2 * * *", 1 * H, local(2026, 10, 25, 2, 15, fold=1), True),
    ("30 2 * * *", 1 * H, local(2026, 10, 25, 2, 45, fold=1), False),
    # autumn: 01:30 CEST + 2 real hours = 02:30 CET
    ("30 1 * * *", 2 * H, local(2026, 10, 25, 2, 15, fold=1), True),
    ("30 1 * * *", 2 * H, local(2026, 10, 25, 2, 31, fold=1), False),
]


@pytest.mark.parametrize(("cron", "duration", "at", "muted"), IN_WINDOW)
def test_in_window(cron: str, duration: float, at: float, muted: bool) -> None:
    assert in_window(window(cron, duration), STHLM, at) is muted


def test_next_window_edge_is_the_next_open_or_close() -> None:
    w = window("0 22 * * 0-6", 2 * H)
    assert next_window_edge(w, STHLM, local(2026, 3, 4, 12, 0)) == local(2026, 3, 4, 22, 0)
    assert next_window_edge(w, STHLM, local(2026, 3, 4, 23, 0)) == local(2026, 3, 5, 0, 0)
    spring = window("0 1 * * *", 2 * H)
    assert next_window_edge(spring, STHLM, local(2026, 3, 29, 3, 0)) == local(2026, 3, 29, 4, 0)


def test_schedule_is_shared_and_remembers_its_last_answer() -> None:
    assert cron_schedule("0 22 * * 0-6", STHLM) is cron_schedule("0 22 * * 0-6", STHLM)
    schedule = CronSchedule("0 22 * * 0-6", STHLM)
    first = schedule.next_after(local(2026, 3, 4, 12, 0))
    calls: list[float] = []

    def compute(ts: float) -> float | None:
        calls.append(ts)
        return None

    schedule._compute = compute  # type: ignore[method-assign]
    # Every tick until the window opens gets the same answer without iterating again.
    for minute in range(0, 600, 7):
        assert schedule.next_after(local(2026, 3, 4, 12, 0) + minute * M) == first
    assert calls == []


BAD = [
    ("* * * *", "need 5 fields (minute hour day month weekday)"),
    ("0 0 * * * *", "need 5 fields (minute hour day month weekday)"),
    ("@daily", "need 5 fields (minute hour day month weekday)"),
    ("0 25 * * *", "bad hour '25' (use 0-23)"),
    ("60 1 * * *", "bad minute '60' (use 0-59)"),
    ("0 0 0 * *", "bad day-of-month '0' (use 1-31)"),
    ("0 0 * 13 *", "bad month '13' (use 1-12 or JAN-DEC)"),
    ("0 0 * * 8", "bad day-of-week '8' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    ("0 0 * * MON-FUN", "bad day-of-week 'MON-FUN' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    ("0 0 * * 5-1", "bad day-of-week '5-1' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    ("0 0 * * */0", "bad day-of-week '*/0' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    # Quartz extensions cronsim would read are not cron
    ("0 0 L * *", "bad day-of-month 'L' (use 1-31)"),
    ("0 0 * * 5L", "bad day-of-week '5L' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    ("0 0 * * MON#1", "bad day-of-week 'MON#1' (use 0-7 or SUN-SAT (0 and 7: Sunday))"),
    ("0 0 31 2 *", "day-of-month '31' never comes in month '2'"),
]


@pytest.mark.parametrize(("cron", "reason"), BAD, ids=[b[0] for b in BAD])
def test_validate_rejects_with_file_line_and_the_same_reason_as_runtime(
    tmp_path: Path, cron: str, reason: str
) -> None:
    message = f"invalid cron: {reason}"
    path = tmp_path / "c.yaml"
    path.write_text(
        f'maintenance:\n  - match: {{check: web}}\n    cron: "{cron}"\n    duration: 1h\n'
    )
    from agent.configload import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [f"{path}:3: maintenance[0].cron: {message}"]
    with pytest.raises(ValueError) as runtime:
        CronSchedule(cron, STHLM)
    assert str(runtime.value) == message


def test_validate_cli_accepts_the_expressions_of_the_issue(tmp_path: Path) -> None:
    windows = "".join(
        f'  - {{match: {{check: web}}, cron: "{c}", duration: 1h}}\n'
        for c in ("0 22 * * 0-6", "0 22 * * */2", "0 22 * * 7", "0 22 * * SUN-THU", "0 0 13 * FRI")
    )
    path = tmp_path / "ok.yaml"
    path.write_text("maintenance:\n" + windows)
    done = subprocess.run(
        [*VAKTPOST, "validate", "-c", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


_TOKEN = st.sampled_from(
    ["*", "*/2", "*/0", "0", "1", "5", "7", "8", "13", "23", "24", "31", "59", "60",
     "1-5", "5-1", "1-5/2", "0-7", "SUN", "MON-FRI", "SUN-THU", "FRI-SUN", "JAN", "JUL-DEC",
     "L", "5L", "MON#2", "W", "?", "1,15", "a-b", ""]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKEN, min_size=4, max_size=6))
def test_validate_accepts_exactly_what_runtime_evaluates(tokens: list[str]) -> None:
    expr = " ".join(tokens)
    try:
        parse_cron(expr)
    except ValueError:
        accepted = False
    else:
        accepted = True
    try:
        schedule = CronSchedule(expr, STHLM)
        # Both DST days and a plain one: an accepted expression evaluates everywhere.
        for at in (MARCH, local(2026, 3, 29, 1, 59), local(2026, 10, 25, 2, 30, fold=1)):
            schedule.next_after(at)
    except ValueError:
        evaluated = False
    else:
        evaluated = True
    assert accepted is evaluated, expr


def test_validate_rejects_a_window_too_long_to_evaluate(tmp_path: Path) -> None:
    from agent.configload import load_config

    path = tmp_path / "long.yaml"
    path.write_text(
        "maintenance:\n  - match: {check: web}\n    cron: '0 1 * * *'\n    duration: 400d\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4: maintenance[0].duration: duration 400 days: a window lasts at most 366 days"
    ]
    assert window("0 1 * * *", 366 * 86400.0).duration == 366 * 86400.0


def test_a_window_that_cannot_be_evaluated_is_closed_and_logged_at_most_hourly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Past validate (e.g. a config model built in code): year -1807 is out of range.
    bad = Maintenance.model_construct(
        match={"check": "web"}, cron="0 1 * * *", duration=200000 * 7 * 86400.0, comment="huge"
    )
    now = datetime(2026, 3, 4, 12, tzinfo=UTC).timestamp()
    with caplog.at_level(logging.ERROR, logger="vaktpost.maintenance"):
        assert in_window(bad, STHLM, now) is False
        assert next_window_edge(bad, STHLM, now + 60) is None
        assert in_window(bad, STHLM, now + 1800) is False
        assert len(caplog.records) == 1
        assert in_window(bad, STHLM, now + H) is False
    assert len(caplog.records) == 2
    message = caplog.records[0].getMessage()
    assert message.startswith("maintenance window 'huge' (cron '0 1 * * *') cannot be evaluated")
    assert "out of range" in message


BROKEN = """maintenance:
  - {match: {check: lonely}, cron: "0 22 * * 0-6", duration: 12h, comment: broken}
  - {match: {check: web}, cron: "0 3 * * *", duration: 1h, comment: nightly}
"""


def test_a_window_that_throws_stops_no_other_incident(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = cron_schedule

    def parser(expr: str, timezone: str) -> CronSchedule:
        if expr == "0 22 * * 0-6":
            raise ValueError("evaluation failed for this window")
        return real(expr, timezone)

    monkeypatch.setattr("alerting.mute.cron_schedule", parser)
    # Wednesday 22:30: the broken window would cover it, the nightly one does not.
    start = local(2026, 3, 4, 22, 30)
    tl = Timeline(IncidentEngine(base_config(BROKEN)), start)
    with caplog.at_level(logging.ERROR, logger="vaktpost.maintenance"):
        tl.result("lonely", "critical", 2)
        tl.result("web", "critical", 2)
        tl.advance_to(9 * H)
    by_incident: dict[str, list[tuple[float, str]]] = {}
    for n in tl.notifications:
        by_incident.setdefault(n.payload["system"], []).append(
            (round(n.created_at - start), n.channel)
        )
    # The check whose window throws still notifies (the default ladder) ...
    assert by_incident["lonely"][0] == (0, "oncall")
    # ... and the department's ladder runs on time, each step within group_wait.
    steps = [(0, "oncall"), (30 * M, "manager"), (H, "manager"), (2 * H, "crisis"), (8 * H, "top")]
    case = by_incident["case"]
    for at, channel in steps:
        assert any(channel == ch and at <= t <= at + 15 for t, ch in case), (at, channel, case)
    # The nightly window still mutes web's repeats between 03:00 and 04:00 (none are set)
    # and is evaluated without error; the broken one is named in the log.
    assert caplog.records, "the broken window must be logged"
    assert all("'broken'" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) <= 10  # at most hourly over 9 hours


def test_the_issues_window_mutes_instead_of_raising() -> None:
    tl = Timeline(
        IncidentEngine(
            base_config(
                'maintenance:\n  - {match: {check: web}, cron: "0 22 * * 0-6", duration: 2h}\n'
            )
        ),
        local(2026, 3, 4, 22, 30),
    )
    tl.result("web", "critical", 2)
    assert tl.sent() == [], "muted by the window, and no exception"
    tl.advance_to(1.75 * H)
    # At midnight the window closes and the step due by then (1h: 50% rto) goes out.
    assert tl.sent() == [(5400.0, "manager", "2")]
