"""Channel drills, pure: when a drill is due, its message, and what a run's outcome is.

A drill proves end to end that a path (a channel, a person, a rotation's phone)
still reaches someone: a message plainly marked ÖVNING / DRILL with a code of
its own that must be acknowledged within `ack_within`. Drill codes have five
digits and incident codes four (alerting/ackcodes.py), so a reply is never
ambiguous. No I/O here; agent/drills_component.py stores, sends and observes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.people_config import Drill
from alerting.ackcodes import DRILL_DIGITS, assign_code
from alerting.model import Notification
from alerting.payload import rfc3339
from alerting.rotation import recipient, split_target
from core.cron import cron_schedule
from core.durations import format_duration
from core.i18n import words

CHECK_PREFIX = "drill-"  # the warning incident's pseudo check: drill-NAME
KEEP_RUNS = 100  # a weekly drill: two years of results for the monthly reports


def check_name(drill: str) -> str:
    return f"{CHECK_PREFIX}{drill}"


DRILL_STATE_KEY = "drill"  # per-check state key of a drill's runs (under drill-NAME)


@dataclass(slots=True)
class DrillRun:
    drill: str
    code: str
    sent_at: float
    deadline: float
    targets: list[str] = field(default_factory=list)  # "channel" or "channel#person"
    dedup_keys: list[str] = field(default_factory=list)
    delivered: bool | None = None  # None until the outbox has an outcome
    acked_by: str | None = None
    acked_person: str | None = None
    acked_via: str = ""
    acked_at: float | None = None
    missed: bool = False

    @property
    def is_open(self) -> bool:
        return self.acked_at is None and not self.missed

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else round(self.acked_at - self.sent_at, 3)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrillRun:
        return cls(**data)

    def document(self) -> dict[str, Any]:
        """A run as the API and the monthly report show it."""
        return {
            "drill": self.drill,
            "code": self.code,
            "sent_at": rfc3339(self.sent_at),
            "deadline": rfc3339(self.deadline),
            "targets": list(self.targets),
            "delivered": self.delivered,
            "acked_by": self.acked_by,
            "acked_via": self.acked_via or None,
            "acked_at": rfc3339(self.acked_at) if self.acked_at is not None else None,
            "ack_seconds": self.ack_seconds,
            "result": self.result,
        }

    @property
    def result(self) -> str:
        if self.acked_at is not None:
            return "passed"
        return "missed" if self.missed else "open"


@dataclass(slots=True)
class DrillState:
    """What is kept of one drill (the store's per-check state under drill-NAME)."""

    last_fire: float | None = None  # the cron time last handled
    runs: list[DrillRun] = field(default_factory=list)  # oldest first
    last_success: float | None = None

    @property
    def current(self) -> DrillRun | None:
        return self.runs[-1] if self.runs and self.runs[-1].is_open else None

    @property
    def last_ack_seconds(self) -> float | None:
        passed = [r for r in self.runs if r.acked_at is not None]
        return passed[-1].ack_seconds if passed else None

    def to_json(self) -> dict[str, Any]:
        return {
            "last_fire": self.last_fire,
            "runs": [r.to_json() for r in self.runs[-KEEP_RUNS:]],
            "last_success": self.last_success,
        }

    @classmethod
    def from_json(cls, data: Any) -> DrillState:
        if not isinstance(data, dict):
            return cls()
        runs = [DrillRun.from_json(r) for r in data.get("runs", [])]
        return cls(data.get("last_fire"), runs, data.get("last_success"))


def due(drill: Drill, state: DrillState, now: float, timezone: str) -> float | None:
    """The latest cron time in (last_fire, now], or None. A drill first seen now starts
    counting from now (no drill for times before it existed); times missed while the
    agent was down collapse into one run."""
    if state.last_fire is None:
        state.last_fire = now
        return None
    schedule = cron_schedule(drill.cron, timezone)
    fire = schedule.next_after(state.last_fire)
    if fire is None or fire > now:
        return None
    while (following := schedule.next_after(fire)) is not None and following <= now:
        fire = following
    return fire


def start_run(
    drill: Drill, fire: float, now: float, agent: str, targets: tuple[str, ...], taken: set[str]
) -> DrillRun:
    code = assign_code(f"{agent}/drill/{drill.name}/{fire:.0f}", taken, DRILL_DIGITS)
    return DrillRun(drill.name, code, now, now + drill.ack_within, list(targets))


def _t(language: str) -> Mapping[str, str]:
    return words(language)


def drill_text(drill: Drill, run: DrillRun, language: str, url: str | None) -> str:
    t = _t(language)
    lines = [t["drill_title"].format(name=drill.name), t["drill_body"]]
    if drill.message:
        lines.append(drill.message.strip())
    lines.append(t["drill_ack"].format(code=run.code, within=format_duration(drill.ack_within)))
    if url:
        lines.append(t["ack_by_link"].format(url=url))
    return "\n".join(lines)


def notifications(
    drill: Drill,
    run: DrillRun,
    agent: str,
    language: str,
    people: dict[str, Any],
    link: Any = None,
) -> list[Notification]:
    """One message per target; `link(person)` gives a signed ack link or None."""
    out = []
    for target in run.targets:
        channel, person = split_target(target)
        key = f"{agent}/-/{check_name(drill.name)}/drill/{run.sent_at:.0f}/{channel}"
        if person is not None:
            key += f"/to-{person}"
        url = link(person) if link is not None else None
        payload: dict[str, Any] = {
            "version": 1,
            "kind": "drill",
            "drill": True,
            "drill_name": drill.name,
            "dedup_key": key,
            "incident_id": 0,
            "status": "firing",
            "step": None,
            "department": None,
            "system": check_name(drill.name),
            "system_name": check_name(drill.name),
            "checks": [],
            "started_at": rfc3339(run.sent_at),
            "created_at": rfc3339(run.sent_at),
            "fallback": "",
            "impacted": [],
            "caused_by": None,
            "grouped": [key],
            "ack_code": run.code,
            "ack_url": url,
            "agent": agent,
            "text": drill_text(drill, run, language, url),
        }
        if person is not None:
            known = people.get(person)
            payload["recipient"] = (
                recipient(person, known) if known else {"id": person, "name": person}
            )
        run.dedup_keys.append(key)
        out.append(Notification(key, channel, 0, "firing", run.sent_at, payload))
    return out


def describe_path(drill: Drill, run: DrillRun, people: dict[str, Any]) -> str:
    """The path a missed drill may have lost: the entries, channels and numbers."""
    parts = []
    for target in run.targets:
        channel, person = split_target(target)
        if person is None:
            parts.append(f"channel {channel}")
            continue
        known = people.get(person)
        number = getattr(known, "phone", None) if known is not None else None
        parts.append(f"channel {channel} to {person}" + (f" ({number})" if number else ""))
    entries = ", ".join(drill.notify)
    return f"{entries} via {'; '.join(parts)}" if parts else f"{entries} (nobody to send to)"


def missed_message(drill: Drill, run: DrillRun, language: str, people: dict[str, Any]) -> str:
    t = _t(language)
    within = format_duration(drill.ack_within)
    return t["drill_missed"].format(
        name=drill.name, within=within, path=describe_path(drill, run, people)
    )


def passed_message(run: DrillRun, language: str) -> str:
    after = format_duration(run.ack_seconds or 0.0)
    return _t(language)["drill_passed"].format(name=run.drill, by=run.acked_by, after=after)
