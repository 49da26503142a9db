"""Root cause, impact on departments and grouping, on the engine's simulated clock.

Issue 8, "What was seen" 1, 2, 4 and 10: dependents of a dead uplink stood as
their own root causes (an alert storm), impacted departments never heard of the
outage, and reloads lost incidents.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agent.state.sqlite_alerting import OutboxRow
from alerting import grouping
from alerting.engine import IncidentEngine
from alerting.model import EngineState, Notification
from tests.alerting_fixtures import Timeline, config_from

T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC


def fleet_yaml(dependents: int = 20, chain: bool = False, group_wait: str = "10s") -> str:
    """`core` (the uplink) in no department; N dependents, each its own system."""
    via = "switch" if chain else "core"
    checks = [
        "  - {name: core, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}",
    ]
    if chain:
        checks.append(
            "  - {name: switch, type: tcp, host: 127.0.0.1, port: 1,"
            " failures_before_alert: 1, depends_on: [core]}"
        )
    checks += [
        f"  - {{name: app{i}, type: tcp, host: 127.0.0.1, port: 1,"
        f" failures_before_alert: 1, depends_on: [{via}]}}"
        for i in range(dependents)
    ]
    half = dependents // 2
    social = "\n".join(
        f"      - {{id: s{i}, name: System {i}, checks: [app{i}], rto: 15m, mtpd: 4h,"
        f" fallback: 'Ring {i}'}}"
        for i in range(half)
    )
    school = "\n".join(
        f"      - {{id: s{i}, checks: [app{i}], rto: 1h}}" for i in range(half, dependents)
    )
    return f"""
agent: {{name: a, language: en, group_wait: {group_wait}}}
channels:
  oncall: {{type: log, default: true}}
  social-duty: {{type: log}}
checks:
{chr(10).join(checks)}
departments:
  - id: social
    name: Social services
    systems:
{social}
    escalation:
      - {{after: 0m, notify: [oncall]}}
      - {{after: 10m, notify: [social-duty]}}
  - id: school
    systems:
{school}
    escalation:
      - {{after: 0m, notify: [oncall]}}
"""


def rows_of(notifications: list[Notification]) -> list[OutboxRow]:
    return [
        OutboxRow(
            i,
            n.dedup_key,
            n.channel,
            n.incident_id,
            n.kind,
            n.payload,
            0,
            n.created_at if n.due_at is None else n.due_at,
            n.created_at,
        )
        for i, n in enumerate(notifications, 1)
    ]


def messages(notifications: list[Notification]) -> dict[str, list[dict[str, Any]]]:
    """What each channel's outbox lane sends: the grouping the daemon applies."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows = rows_of(notifications)
    by_channel = {
        ch: [r for r in rows if r.channel == ch] for ch in sorted({r.channel for r in rows})
    }
    for channel, pending in by_channel.items():
        now = 0.0
        while pending:
            now = max(now, pending[0].next_attempt_at)  # head of line, as the lane
            todo = grouping.ready(pending, now)
            for batch in grouping.batches(todo):
                payload = grouping.merge([r.payload for r in batch], "en", "Europe/Stockholm")
                out.setdefault(channel, []).append(payload)
            done = {r.id for r in todo}
            pending = [r for r in pending if r.id not in done]
    return out


def timeline(text: str) -> Timeline:
    return Timeline(IncidentEngine(config_from(text)), T0)


def root_incident(tl: Timeline) -> Any:
    (root,) = [i for i in tl.engine.state.incidents.values() if i.system == "core"]
    return root


ORDERS = ["dependency first", "dependents first", "interleaved"]


@pytest.mark.parametrize("order", ORDERS)
def test_every_order_gives_one_root_and_one_message_per_channel(order: str) -> None:
    text = fleet_yaml(20)
    if order == "dependents first":  # the uplink needs two failures, its dependents one
        text = text.replace("port: 1, failures_before_alert: 1}", "port: 1}", 1)
    tl = timeline(text)
    deps = [f"app{i}" for i in range(20)]
    if order == "dependency first":
        tl.result("core", "critical")
        for d in deps:
            tl.result(d, "unreachable")
    elif order == "dependents first":
        tl.result("core", "critical")  # not yet confirmed
        for d in deps:
            tl.result(d, "unreachable")
        assert len(tl.engine.state.incidents) == 20
        tl.advance_to(5)
        tl.result("core", "critical")
    else:
        for d in deps[:10]:
            tl.result(d, "unreachable")
        tl.result("core", "critical")
        for d in deps[10:]:
            tl.result(d, "unreachable")
    tl.advance_to(11)
    root = root_incident(tl)
    assert root.caused_by is None
    others = [i for i in tl.engine.state.incidents.values() if i is not root]
    assert len(others) == 20, "each impacted system is down: its own incident"
    assert all(i.caused_by == root.id for i in others)
    assert sorted(root.impacted) == sorted(
        [("social", f"s{i}") for i in range(10)] + [("school", f"s{i}") for i in range(10, 20)]
    )
    sent = messages(tl.notifications)
    assert list(sent) == ["oncall"]
    (message,) = sent["oncall"]
    assert message["system"] == "core", "led by the root cause"
    assert len(message["grouped"]) == 21
    assert {(e["department"], e["system"]) for e in message["impacted"]} == set(root.impacted)


def test_the_grouped_message_lists_time_left_and_fallback() -> None:
    tl = timeline(fleet_yaml(4))
    tl.result("core", "critical")
    for i in range(4):
        tl.result(f"app{i}", "unreachable")
    tl.advance_to(11)
    (message,) = messages(tl.notifications)["oncall"]
    social = [e for e in message["impacted"] if e["department"] == "social"]
    assert {e["fallback"] for e in social} == {"Ring 0", "Ring 1"}
    assert all(e["rto_remaining_seconds"] == 900.0 for e in social)
    assert all(e["mtpd_remaining_seconds"] == 14400.0 for e in social)
    text = message["text"]
    assert "Also impacted (4):" in text
    assert "- Social services: System 0 (15m left to RTO, 4h left to MTPD)" in text
    assert "  Fallback routine: Ring 0" in text
    assert "- school: s2 (1h left to RTO)\n" in text


def test_two_hundred_dependents_one_message_per_channel() -> None:
    tl = timeline(fleet_yaml(200))
    for i in range(100):
        tl.result(f"app{i}", "unreachable")
    tl.result("core", "critical")
    for i in range(100, 200):
        tl.result(f"app{i}", "unreachable")
    tl.advance_to(11)
    sent = messages(tl.notifications)
    assert [len(v) for v in sent.values()] == [1]
    assert len(sent["oncall"][0]["grouped"]) == 201


def test_chain_resolves_to_the_root() -> None:
    tl = timeline(fleet_yaml(4, chain=True))
    tl.result("core", "critical")
    tl.result("switch", "unreachable")
    for i in range(4):
        tl.result(f"app{i}", "unreachable")
    root = root_incident(tl)
    (switch,) = [i for i in tl.engine.state.incidents.values() if i.system == "switch"]
    apps = [i for i in tl.engine.state.incidents.values() if i.system.startswith("s")]
    assert switch.caused_by == root.id
    assert all(i.caused_by == root.id for i in apps), "the root, not the switch in between"
    assert {i.root for i in [switch, *apps]} == {"core"}


def test_impacted_departments_own_later_steps_and_clocks_still_run() -> None:
    tl = timeline(fleet_yaml(4))
    tl.result("core", "critical")
    for i in range(4):
        tl.result(f"app{i}", "unreachable")
    tl.advance_to(16 * 60)
    duty = [s for s in tl.sent() if s[1] == "social-duty"]
    assert sorted(duty) == [(600.0, "social-duty", "1"), (600.0, "social-duty", "1")]
    breaches = [k for k in tl.kinds() if k[1] == "rto_breached"]
    assert len(breaches) == 2, "both social systems (rto 15m) breach at 15 min"
    assert all(at == 900.0 for at, _, _ in breaches)


def test_recovery_of_the_root_resolves_everyone_in_one_message() -> None:
    tl = timeline(fleet_yaml(6))
    tl.result("core", "critical")
    for i in range(6):
        tl.result(f"app{i}", "unreachable")
    tl.advance_to(11)
    tl.result("core", "ok")
    for i in range(6):
        tl.result(f"app{i}", "ok")
    tl.advance_to(30)
    assert not tl.engine.state.incidents
    resolved = [n for n in tl.notifications if n.kind == "resolved"]
    assert len(resolved) == 7
    (message,) = messages(resolved)["oncall"]
    assert len(message["grouped"]) == 7


def test_a_check_with_no_dependents_is_not_held() -> None:
    tl = timeline(fleet_yaml(2) + "\n")
    text = fleet_yaml(2).replace(
        "checks:\n",
        "checks:\n  - {name: lone, type: tcp, host: 127.0.0.1, port: 1,"
        " failures_before_alert: 1}\n",
        1,
    )
    tl = timeline(text)
    tl.result("lone", "critical")
    (note,) = tl.notifications
    assert note.due_at is None, "nothing can be grouped with it: sent at once"


def test_group_wait_zero_sends_each_at_once() -> None:
    tl = timeline(fleet_yaml(3, group_wait="0s"))
    tl.result("core", "critical")
    for i in range(3):
        tl.result(f"app{i}", "unreachable")
    assert all(n.due_at is None for n in tl.notifications)
    assert len(messages(tl.notifications)["oncall"]) == 4


# -- reload and restart (issue 8, seen 4) -------------------------------------------

BASE = """
agent: {{name: a, language: en, group_wait: 0s}}
channels: {{oncall: {{type: log, default: true}}, duty: {{type: log}}}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}
  - {{name: db, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}
departments:
  - id: social
    systems:
      - {{id: case, checks: [{checks}]}}
    escalation: [{{after: 0m, notify: [duty]}}]
"""


def test_reload_that_puts_a_failing_check_into_a_system_opens_its_incident() -> None:
    tl = timeline(BASE.format(checks="web"))
    tl.result("db", "critical")  # db is in no system: its own incident, default ladder
    tl.take(tl.engine.reconfigure(config_from(BASE.format(checks="web, db")), T0 + 5))
    case = tl.engine.open_incident(("social", "case"))
    assert case is not None and case.checks == ["db"]
    assert ("5.0", "duty", "0") in {(str(a), c, k) for a, c, k in tl.sent()}
    # db's loose incident is gone with its unit: resolved, with a notice saying why
    assert tl.engine.open_incident((None, "db")) is None
    (gone,) = [n for n in tl.notifications if n.kind == "resolved"]
    assert gone.channel == "oncall"
    assert gone.payload["message"] == "removed from the config"


def test_reload_that_removes_a_system_resolves_it_with_a_notice() -> None:
    tl = timeline(BASE.format(checks="web"))
    tl.result("web", "critical")
    text = BASE.format(checks="web").replace("      - {id: case, checks: [web]}\n", "")
    text = text.replace("    systems:\n", "    systems:\n      - {id: other, checks: [db]}\n")
    tl.take(tl.engine.reconfigure(config_from(text), T0 + 5))
    assert tl.engine.open_incident(("social", "case")) is None
    resolved = [n for n in tl.notifications if n.kind == "resolved"]
    assert [(n.channel, n.payload["message"]) for n in resolved] == [
        ("duty", "removed from the config")
    ]
    # web still fails and is now in no system: its own incident opens
    assert tl.engine.open_incident((None, "web")) is not None


def test_restart_on_a_new_config_reevaluates_from_the_stored_state() -> None:
    tl = timeline(BASE.format(checks="web"))
    tl.result("db", "critical")
    stored = EngineState(
        checks={k: v for k, v in tl.engine.state.checks.items()},
        incidents={k: v for k, v in tl.engine.state.incidents.items()},
        next_incident_id=tl.engine.state.next_incident_id,
    )
    engine = IncidentEngine(config_from(BASE.format(checks="web, db")), stored)
    out = engine.reconcile(T0 + 60)
    case = engine.open_incident(("social", "case"))
    assert case is not None and case.checks == ["db"]
    assert [n.channel for n in out.notifications if n.kind == "firing"] == ["duty"]


# -- smaller items -----------------------------------------------------------------


def test_unreachable_uplink_is_down_for_the_fallback_decision() -> None:
    text = """
agent: {name: a}
channels: {oncall: {type: log, default: true}}
checks:
  - {name: switch, type: tcp, host: 127.0.0.1, port: 1}
  - {name: uplink, type: link, targets: ["tcp://127.0.0.1:1"], depends_on: [switch]}
"""
    engine = IncidentEngine(config_from(text))
    engine.observe("switch", "critical", "down", T0)
    engine.observe("uplink", "unreachable", "unreachable: depends on switch", T0)
    assert engine.uplink_down()


def test_muted_repeats_do_not_use_up_repeat_numbers() -> None:
    text = BASE.format(checks="web").replace("    escalation:", "    repeat: 10m\n    escalation:")
    tl = timeline(text)
    tl.result("web", "critical")
    tl.engine.add_silence({"check": "web"}, T0 + 60, T0 + 35 * 60, "", "")
    tl.advance_to(60 * 60)
    repeats = [k for _, _, k in tl.sent("repeat")]
    assert repeats[:2] == ["0/repeat-1", "0/repeat-2"]
    assert all(k.endswith(f"repeat-{n}") for k, n in zip(repeats, itertools.count(1)))


def test_a_second_ack_is_recorded_but_notifies_nobody_again() -> None:
    tl = timeline(BASE.format(checks="web"))
    tl.result("web", "critical")
    (incident,) = tl.engine.state.incidents.values()
    tl.take(tl.engine.acknowledge(incident.id, "anna", "on it", T0 + 10))
    tl.take(tl.engine.acknowledge(incident.id, "bo", "me too", T0 + 20))
    assert len(tl.sent("acknowledged")) == 1
    assert [e.message for e in tl.events if e.kind == "acknowledged"] == [
        "anna: on it",
        "bo: me too",
    ]
