"""The incident engine on a simulated clock: table-driven timelines."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerting.drill import run_drill
from alerting.engine import IncidentEngine
from tests.alerting_fixtures import Timeline, base_config, config_from

H = 3600.0
M = 60.0
# A Monday at 08:00 Stockholm time, far from DST changes.
T0 = datetime(2024, 3, 4, 8, 0, tzinfo=ZoneInfo("Europe/Stockholm")).timestamp()


def timeline(extra: str = "", start: float = T0) -> Timeline:
    return Timeline(IncidentEngine(base_config(extra)), start)


def test_confirmation_needs_failures_before_alert() -> None:
    tl = timeline()
    tl.result("web", "critical")
    assert tl.events == [] and not tl.engine.state.incidents
    tl.result("web", "ok")
    tl.result("web", "critical")
    assert not tl.engine.state.incidents, "a success in between resets the count"
    tl.result("web", "critical")
    assert tl.kinds() == [(0, "opened", None), (0, "notify", 0)]
    assert tl.sent() == [(0, "oncall", "0")]


@pytest.mark.parametrize(
    ("step", "at_seconds", "channel"),
    [
        (0, 0, "oncall"),  # after: 0m
        (1, 30 * M, "manager"),  # after: 30m
        (2, 1 * H, "manager"),  # after: 50% rto (rto 2h)
        (3, 2 * H, "crisis"),  # after: rto
        (4, 8 * H, "top"),  # after: mtpd
    ],
)
def test_each_kind_of_after(step: int, at_seconds: float, channel: str) -> None:
    tl = timeline()
    tl.result("web", "critical", 2)
    tl.advance_to(12 * H)
    sent = [s for s in tl.sent() if s[2] == str(step)]
    assert sent == [(at_seconds, channel, str(step))]


def test_twelve_hour_timeline_is_fast_and_complete() -> None:
    started = time.perf_counter()
    tl = timeline()
    tl.result("db", "unknown", 2)
    tl.advance_to(12 * H)
    assert time.perf_counter() - started < 0.5
    assert tl.kinds() == [
        (0, "opened", None),
        (0, "notify", 0),
        (1800, "notify", 1),
        (3600, "notify", 2),
        (7200, "rto_breached", 2),
        (7200, "notify", 3),
        (28800, "mtpd_breached", 3),
        (28800, "notify", 4),
    ]
    crisis = next(n for n in tl.notifications if n.channel == "crisis")
    assert crisis.payload["message"] == "RTO breached: start the fallback routine"
    assert crisis.payload["rto_remaining_seconds"] == 0
    assert crisis.payload["mtpd_remaining_seconds"] == 6 * H
    assert crisis.payload["fallback"] == "Paper forms in binder B."
    assert crisis.dedup_key == "test-agent/social/case/1/3"


def test_repeat_renotifies_current_step_until_acknowledged() -> None:
    cfg = base_config()
    dept = cfg.departments[0].model_copy(update={"repeat": 20 * M})
    tl = Timeline(IncidentEngine(cfg.model_copy(update={"departments": (dept,)})), T0)
    tl.result("web", "critical", 2)
    tl.advance_to(55 * M)
    assert tl.sent() == [
        (0, "oncall", "0"),
        (20 * M, "oncall", "0/repeat-1"),
        (30 * M, "manager", "1"),
        (50 * M, "manager", "1/repeat-1"),
    ]
    assert [e.kind for e in tl.events].count("repeat") == 2


def test_ack_stops_steps_until_it_expires() -> None:
    cfg = base_config()
    dept = cfg.departments[0].model_copy(update={"ack_expires": 1 * H})
    tl = Timeline(IncidentEngine(cfg.model_copy(update={"departments": (dept,)})), T0)
    tl.result("web", "critical", 2)
    tl.advance_to(10 * M)
    tl.take(tl.engine.acknowledge(1, "anna", "on it", tl.now))
    assert tl.engine.state.incidents[1].status == "acknowledged"
    tl.advance_to(69 * M)
    assert [s for s in tl.sent() if s[2] in ("1", "2")] == [], "no steps while acknowledged"
    tl.advance_to(71 * M)
    # The ack lapsed at 70m: the steps that came due meanwhile fire at once.
    assert [s for s in tl.sent() if s[2] in ("1", "2")] == [
        (70 * M, "manager", "1"),
        (70 * M, "manager", "2"),
    ]
    assert (70 * M, "ack_expired", 0) in tl.kinds()
    ack_notice = [n for n in tl.notifications if n.kind == "acknowledged"]
    assert [n.channel for n in ack_notice] == ["oncall"]
    assert ack_notice[0].payload["acknowledged_by"] == "anna"


def test_ack_without_expiry_stops_for_good() -> None:
    tl = timeline()
    tl.result("web", "critical", 2)
    tl.take(tl.engine.acknowledge(1, "bo", "", tl.now))
    tl.advance_to(12 * H)
    assert [s[2] for s in tl.sent("firing")] == ["0"]


def test_recovery_sends_resolved_to_every_notified_channel() -> None:
    tl = timeline()
    tl.result("db", "critical", 2)
    tl.advance_to(31 * M)
    tl.result("db", "ok")
    assert tl.engine.state.incidents, "db needs two successes to recover"
    tl.result("db", "ok")
    assert not tl.engine.state.incidents
    resolved = tl.sent("resolved")
    assert resolved == [(31 * M, "oncall", "resolved"), (31 * M, "manager", "resolved")]
    payload = tl.notifications[-1].payload
    assert payload["status"] == "resolved" and payload["downtime_seconds"] == 31 * M


def test_flapping_opens_a_new_incident_each_time() -> None:
    tl = timeline()
    for _ in range(3):
        tl.result("web", "critical", 2)
        tl.now += 60
        tl.result("web", "ok")
        tl.now += 60
    assert [e.kind for e in tl.events if e.kind in ("opened", "resolved")] == [
        "opened",
        "resolved",
    ] * 3
    assert len({n.incident_id for n in tl.notifications}) == 3


def test_flapping_below_threshold_opens_nothing() -> None:
    tl = timeline()
    for _ in range(20):
        tl.result("web", "critical")
        tl.result("web", "ok")
    assert tl.events == []


def test_one_incident_per_system_and_default_ladder_for_loose_checks() -> None:
    tl = timeline()
    tl.result("web", "critical", 2)
    tl.result("db", "critical", 2)
    tl.result("lonely", "critical", 2)
    incidents = sorted(
        (i.department or "", i.system, tuple(i.checks)) for i in tl.engine.state.incidents.values()
    )
    assert incidents == [("", "lonely", ("lonely",)), ("social", "case", ("web", "db"))]
    lonely = [n for n in tl.notifications if n.payload["system"] == "lonely"]
    assert [(n.channel, n.dedup_key) for n in lonely] == [("oncall", "test-agent/-/lonely/2/0")], (
        "default: true channels are the default ladder"
    )


def test_silence_mutes_notifications_not_state() -> None:
    tl = timeline()
    tl.engine.add_silence({"check": "w*", "department": "social"}, T0, T0 + 45 * M, "", "x")
    tl.result("web", "critical", 2)
    tl.advance_to(44 * M)
    assert tl.sent() == []
    assert tl.engine.state.incidents[1].steps_taken == [0, 1], "steps go on, muted"
    tl.advance_to(46 * M)
    # When the silence ends the current step is delivered once.
    assert tl.sent() == [(45 * M, "manager", "1")]


def test_silence_on_label_and_non_matching_silence() -> None:
    tl = timeline()
    tl.engine.add_silence({"owner": "dba"}, T0, T0 + H, "", "x")
    tl.engine.add_silence({"system": "other"}, T0, T0 + H, "", "x")
    tl.result("web", "critical", 2)
    assert tl.sent() == [(0, "oncall", "0")], "web has no owner label"
    tl.result("web", "ok")
    tl.result("db", "critical", 2)
    assert [s for s in tl.sent() if s[2] == "0"] == [(0, "oncall", "0")], "db is muted"


MIDNIGHT = """maintenance:
  - {match: {department: social}, cron: "30 23 * * 0", duration: 1h, comment: patch}
"""


@pytest.mark.parametrize(
    ("local", "muted"),
    [
        ((2024, 3, 10, 23, 29), False),
        ((2024, 3, 10, 23, 30), True),
        ((2024, 3, 11, 0, 15), True),  # crossing midnight into Monday
        ((2024, 3, 11, 0, 31), False),
        ((2024, 3, 11, 23, 45), False),  # Monday night: cron says Sunday (0)
    ],
)
def test_maintenance_window_crossing_midnight(
    local: tuple[int, int, int, int, int], muted: bool
) -> None:
    start = datetime(*local, tzinfo=ZoneInfo("Europe/Stockholm")).timestamp()
    tl = timeline(MIDNIGHT, start)
    tl.result("web", "critical", 2)
    assert (tl.sent() == []) is muted


DST = """maintenance:
  - {match: {check: web}, cron: "30 1 * * *", duration: 2h, comment: nightly}
"""


@pytest.mark.parametrize(
    ("utc_offset_hours", "muted"),
    [
        # 31 Mar 2024: clocks go 02:00 -> 03:00 in Stockholm. Window opens 01:30 CET
        # (00:30 UTC) and lasts 2 real hours: until 02:30 UTC = 04:30 CEST.
        (0.25, False),  # 00:15 UTC: before
        (0.75, True),  # 00:45 UTC
        (2.25, True),  # 02:15 UTC = 04:15 CEST
        (2.75, False),  # 02:45 UTC = 04:45 CEST
    ],
)
def test_maintenance_window_across_dst(utc_offset_hours: float, muted: bool) -> None:
    midnight_utc = datetime(2024, 3, 31, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    tl = timeline(DST, midnight_utc + utc_offset_hours * H)
    tl.result("web", "critical", 2)
    assert (tl.sent() == []) is muted


def test_dependency_with_fifty_dependents_gives_one_root_cause() -> None:
    checks = "\n".join(
        f"  - {{name: dep{i}, type: tcp, host: 127.0.0.1, port: 1, depends_on: [core]}}"
        for i in range(50)
    )
    systems = "\n".join(f"      - {{id: s{i}, checks: [dep{i}]}}" for i in range(50))
    text = f"""
agent: {{name: a, language: sv}}
channels: {{oncall: {{type: log, default: true}}}}
checks:
  - {{name: core, type: tcp, host: 127.0.0.1, port: 1}}
{checks}
departments:
  - id: school
    systems:
{systems}
    escalation: [{{after: 0m, notify: [oncall]}}]
"""
    tl = Timeline(IncidentEngine(config_from(text)), T0)
    tl.result("core", "critical")
    for i in range(50):
        tl.result(f"dep{i}", "unreachable", 3)
    tl.result("core", "critical")
    # Each impacted system is down (its own incident), caused by the one root.
    assert len(tl.engine.state.incidents) == 51
    (incident,) = [i for i in tl.engine.state.incidents.values() if i.system == "core"]
    assert sorted(incident.impacted) == sorted(("school", f"s{i}") for i in range(50))
    caused = [i for i in tl.engine.state.incidents.values() if i is not incident]
    assert {i.caused_by for i in caused} == {incident.id}
    (note,) = [n for n in tl.notifications if n.payload["system"] == "core"]
    assert len(note.payload["impacted"]) == 50
    assert "Påverkas också" in note.payload["text"], "Swedish text"
    assert {n.payload["group_key"] for n in tl.notifications} == {"core"}


def test_swedish_and_english_text() -> None:
    tl = timeline()
    tl.result("web", "critical", 2)
    text = tl.notifications[0].payload["text"]
    assert "Socialtjänsten: Treserva" in text
    assert "Time left to RTO: 2h" in text and "Time left to MTPD: 8h" in text
    assert "Paper forms in binder B." in text and "vaktpost ack 1" in text


def test_drill_output_equals_the_engine() -> None:
    cfg = base_config()
    drill = run_drill(cfg, "social/case", 12 * H, T0)
    tl = Timeline(IncidentEngine(cfg), T0)
    tl.result("web", "critical", 2)
    tl.advance_to(12 * H)
    assert [(e.at, e.kind, e.step, e.channels) for e in drill.events] == [
        (e.at, e.kind, e.step, e.channels) for e in tl.events
    ]
    assert [n.dedup_key for n in drill.notifications] == [n.dedup_key for n in tl.notifications]
    doc = drill.to_json()
    assert doc["rto_seconds"] == 7200 and doc["mtpd_seconds"] == 28800
    assert [e["kind"] for e in doc["events"]][:2] == ["opened", "notify"]


def test_drill_with_ack_and_recovery() -> None:
    doc = run_drill(
        base_config(), "social/case", 12 * H, T0, ack_after=45 * M, recover_after=3 * H
    ).to_json()
    kinds = [(e["at_seconds"], e["kind"]) for e in doc["events"]]
    assert (2700, "acknowledged") in kinds
    assert kinds[-1] == (10800, "resolved")
    assert not any(k == "notify" and t > 2700 for t, k in kinds)
