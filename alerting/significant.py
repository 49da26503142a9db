"""Significant incidents (cybersäkerhetslagen 2025:1506, NIS2 art. 23): the report clocks.

Pure: a Significance record and the time go in; deadlines, overdue stages and the
reminders that are due come out. Nothing here reads a clock or does I/O
(alerting/significant_clocks.py runs it in the daemon; docs/significant.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from alerting.model import Incident, Notification
from alerting.payload import rfc3339
from core.i18n import text, words

if TYPE_CHECKING:
    from agent.config import SignificantLimits, SignificantRule

STAGES = ("early_warning", "notification", "final_report")
# Shares of each stage's time at which its reminder goes out; 1.0 is the deadline itself.
REMIND_AT = (0.5, 0.9, 1.0)


@dataclass(slots=True)
class Significance:
    incident_id: int
    marked_at: float
    marked_by: str
    reason: str = ""
    reported: dict[str, float] = field(default_factory=dict)  # stage -> when marked sent
    reported_by: dict[str, str] = field(default_factory=dict)
    reminded: list[str] = field(default_factory=list)  # "stage@share" already handled

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Significance:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Reminder:
    incident_id: int
    stage: str
    share: float
    deadline: float


def stage_window(sig: Significance, limits: SignificantLimits, stage: str) -> tuple[float, float]:
    """(start, deadline) of a stage. The final report is due a month after the incident
    notification went in (art. 23(4)(d)); until it has, after the notification's deadline."""
    if stage == "early_warning":
        return sig.marked_at, sig.marked_at + limits.early_warning
    if stage == "notification":
        return sig.marked_at, sig.marked_at + limits.notification
    start = sig.reported.get("notification", sig.marked_at + limits.notification)
    return start, start + limits.final_report


def deadlines(sig: Significance, limits: SignificantLimits) -> dict[str, float]:
    return {stage: stage_window(sig, limits, stage)[1] for stage in STAGES}


def overdue(sig: Significance, limits: SignificantLimits, now: float) -> dict[str, bool]:
    return {
        stage: stage not in sig.reported and now >= deadline
        for stage, deadline in deadlines(sig, limits).items()
    }


def due_reminders(
    sig: Significance, limits: SignificantLimits, now: float
) -> tuple[list[Reminder], list[str]]:
    """The reminders to send now, and every key to mark handled.

    Of the points of a stage that have passed unhandled, only the latest is sent: an
    agent that was down over two of them sends one reminder, not a burst.
    """
    out: list[Reminder] = []
    handled: list[str] = []
    for stage in STAGES:
        if stage in sig.reported:
            continue
        start, deadline = stage_window(sig, limits, stage)
        passed = [
            share
            for share in REMIND_AT
            if start + share * (deadline - start) <= now
            and f"{stage}@{share:g}" not in sig.reminded
        ]
        if passed:
            handled.extend(f"{stage}@{share:g}" for share in passed)
            out.append(Reminder(sig.incident_id, stage, passed[-1], deadline))
    return out, handled


def rule_matches(
    rule: SignificantRule, incident: Incident, rto: float | None, mtpd: float | None, now: float
) -> bool:
    """Every condition a rule names must hold; a rule names at least one."""
    if rule.systems and incident.system not in rule.systems:
        return False
    if rule.rto_breached and not (incident.rto_breached or _past(incident, rto, now)):
        return False
    if rule.mtpd_breached and not (incident.mtpd_breached or _past(incident, mtpd, now)):
        return False
    return not (rule.after is not None and now - incident.started_at < rule.after)


def _past(incident: Incident, limit: float | None, now: float) -> bool:
    return limit is not None and now - incident.started_at >= limit


def describe_rule(rule: SignificantRule) -> str:
    parts = [k for k in ("rto_breached", "mtpd_breached") if getattr(rule, k)]
    if rule.after is not None:
        from core.durations import format_duration

        parts.append(f"down {format_duration(rule.after)}")
    if rule.systems:
        parts.append("systems " + ",".join(rule.systems))
    return "significant_when: " + ", ".join(parts)


def stage_name(stage: str, language: str) -> str:
    return text(language, f"stage_{stage}")


def reminder_notification(
    reminder: Reminder,
    incident: Incident,
    channel: str,
    agent: str,
    now: float,
    language: str,
    local_time: str,
) -> Notification:
    """One reminder to one compliance channel; the payload has the keys every channel reads."""
    t = words(language)
    where = f"{incident.department}/{incident.system}" if incident.department else incident.system
    fields = {
        "id": incident.id,
        "system": where,
        "stage": stage_name(reminder.stage, language),
        "deadline": local_time,
        "key": reminder.stage,
    }
    late = t["significant_late"] if reminder.share >= 1.0 else t["significant_due"]
    message = late.format(**fields) + "\n" + t["significant_done"].format(**fields)
    key = f"{agent}/{incident.department}/{incident.system}/{incident.id}"
    key += f"/significant-{reminder.stage}-{reminder.share:g}"
    payload: dict[str, Any] = {
        "version": 1,
        "kind": "significant",
        "dedup_key": key,
        "incident_id": incident.id,
        "status": "firing",
        "step": None,
        "department": incident.department,
        "system": incident.system,
        "checks": [],
        "started_at": rfc3339(incident.started_at),
        "created_at": rfc3339(now),
        "fallback": "",
        "impacted": [],
        "caused_by": None,
        "grouped": [],
        "agent": agent,
        "significant": {
            "stage": reminder.stage,
            "deadline": rfc3339(reminder.deadline),
            "share": reminder.share,
            "overdue": reminder.share >= 1.0,
        },
        "text": message,
    }
    return Notification(key, channel, incident.id, "firing", now, payload)
