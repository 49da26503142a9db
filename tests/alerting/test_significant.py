"""Significant-incident clocks on an injected clock (alerting/significant.py)."""

from __future__ import annotations

from agent.config import SignificantLimits, SignificantRule
from alerting.model import Incident
from alerting.significant import (
    Significance,
    deadlines,
    due_reminders,
    overdue,
    reminder_notification,
    rule_matches,
)

H = 3600.0
T0 = 1_800_000_000.0
LIMITS = SignificantLimits()


def run(sig: Significance, until: float, step: float = 60.0) -> list[tuple[float, str, float]]:
    """Tick every `step` seconds from the mark to `until`; what went out, when."""
    sent: list[tuple[float, str, float]] = []
    now = sig.marked_at
    while now <= until:
        reminders, handled = due_reminders(sig, LIMITS, now)
        sig.reminded.extend(handled)
        sent.extend((now - sig.marked_at, r.stage, r.share) for r in reminders)
        now += step
    return sent


def test_defaults_are_the_law_stages() -> None:
    sig = Significance(1, T0, "ops")
    assert deadlines(sig, LIMITS) == {
        "early_warning": T0 + 24 * H,
        "notification": T0 + 72 * H,
        "final_report": T0 + 72 * H + 30 * 24 * H,
    }


def test_reminders_at_half_ninety_percent_and_the_deadline_of_each_stage() -> None:
    sig = Significance(1, T0, "ops")
    sent = run(sig, T0 + 80 * H)
    assert sent == [
        (12 * H, "early_warning", 0.5),
        (21.6 * H, "early_warning", 0.9),
        (24 * H, "early_warning", 1.0),
        (36 * H, "notification", 0.5),
        (64.8 * H, "notification", 0.9),
        (72 * H, "notification", 1.0),
    ]
    assert overdue(sig, LIMITS, T0 + 80 * H) == {
        "early_warning": True,
        "notification": True,
        "final_report": False,
    }


def test_no_reminder_after_a_stage_is_marked_sent() -> None:
    sig = Significance(1, T0, "ops")
    run(sig, T0 + 13 * H)  # the 50% early-warning reminder went out
    sig.reported["early_warning"] = T0 + 13 * H
    later = run(Significance(**{**sig.to_json(), "marked_at": T0}), T0 + 30 * H)
    assert [s for s in later if s[1] == "early_warning"] == []
    assert overdue(sig, LIMITS, T0 + 30 * H)["early_warning"] is False


def test_final_report_runs_from_when_the_notification_was_sent() -> None:
    sig = Significance(1, T0, "ops", reported={"early_warning": T0 + H, "notification": T0 + 2 * H})
    assert deadlines(sig, LIMITS)["final_report"] == T0 + 2 * H + 30 * 24 * H


def test_an_agent_down_over_several_points_sends_one_reminder() -> None:
    sig = Significance(1, T0, "ops")
    reminders, handled = due_reminders(sig, LIMITS, T0 + 23 * H)
    assert [(r.stage, r.share) for r in reminders] == [("early_warning", 0.9)]
    assert handled == ["early_warning@0.5", "early_warning@0.9"]


def test_reminder_payload_says_stage_and_deadline_with_a_stable_key() -> None:
    sig = Significance(7, T0, "ops")
    reminders, _ = due_reminders(sig, LIMITS, T0 + 24 * H)
    incident = Incident(7, "social", "case-management", T0 - H)
    note = reminder_notification(
        reminders[0], incident, "soc", "srv1", T0 + 24 * H, "en", "2027-01-16 10:00"
    )
    assert note.dedup_key == "srv1/social/case-management/7/significant-early_warning-1"
    assert note.payload["significant"]["overdue"] is True
    assert note.payload["text"].startswith(
        "Significant incident #7 (social/case-management): the early warning is OVERDUE"
    )


def test_rules() -> None:
    incident = Incident(3, "water", "scada", T0)
    assert not rule_matches(SignificantRule(rto_breached=True), incident, 4 * H, None, T0 + H)
    assert rule_matches(SignificantRule(rto_breached=True), incident, 4 * H, None, T0 + 4 * H)
    after = SignificantRule(after=2 * H, systems=("scada",))
    assert rule_matches(after, incident, None, None, T0 + 2 * H)
    assert not rule_matches(after, Incident(4, "water", "billing", T0), None, None, T0 + 9 * H)
