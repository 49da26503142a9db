"""The continuity drill: the real engine on a simulated clock, for one system's outage.

`drill_payloads` turns what the drill would have sent into payloads that can be
really sent (`vaktpost drill --send-to`) and that nobody can take for a real
outage: `"drill": true`, `[DRILL]` in the text, and a dedup key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.config import Config
from alerting.engine import IncidentEngine
from alerting.model import Event, Notification, Outcome
from alerting.text import drill_text


class DrillError(ValueError):
    pass


@dataclass
class DrillResult:
    department: str | None
    system: str
    start: float
    rto: float | None
    mtpd: float | None
    fallback: str = ""
    language: str = "sv"
    events: list[Event] = field(default_factory=list)
    # The text the event's notification carries, marked as a drill as `--send-to`
    # sends it (None: the event sends nothing), index for index with `events`.
    texts: list[str | None] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "system": self.system,
            "rto_seconds": self.rto,
            "mtpd_seconds": self.mtpd,
            "fallback": self.fallback,
            "events": [
                {
                    "at_seconds": round(e.at - self.start, 3),
                    "kind": e.kind,
                    "step": e.step,
                    "channels": list(e.channels),
                    "message": e.message,
                    "text": text,
                }
                for e, text in zip(self.events, self.texts, strict=True)
            ],
        }


def parse_target(target: str) -> tuple[str | None, str]:
    """DEPT/SYSTEM, or a bare check name for a check in no department."""
    dept, sep, system = target.partition("/")
    return (dept, system) if sep else (None, dept)


def fail_unit(engine: IncidentEngine, key: tuple[str | None, str], now: float) -> Outcome:
    """Make the unit's first check fail until confirmed, all at `now`."""
    unit = engine.plan.units[key]
    if not unit.checks:
        raise DrillError(f"{key[1]} has no checks to fail")
    name = unit.checks[0]
    out = Outcome()
    for _ in range(engine.plan.checks[name].failures_before_alert):
        out.merge(engine.observe(name, "critical", "drill: simulated outage", now))
    return out


def recover_unit(engine: IncidentEngine, key: tuple[str | None, str], now: float) -> Outcome:
    out = Outcome()
    for name in engine.plan.units[key].checks:
        for _ in range(engine.plan.checks[name].successes_before_recovery):
            out.merge(engine.observe(name, "ok", "drill: recovered", now))
    return out


def run_drill(
    config: Config,
    target: str,
    duration: float,
    start: float,
    ack_after: float | None = None,
    recover_after: float | None = None,
) -> DrillResult:
    engine = IncidentEngine(config)
    key = parse_target(target)
    unit = engine.plan.units.get(key)
    if unit is None:
        raise DrillError(f"unknown system {target!r}: use DEPARTMENT/SYSTEM")
    result = DrillResult(
        key[0], key[1], start, unit.rto, unit.mtpd, unit.fallback.strip(), engine.plan.language
    )
    _collect(result, fail_unit(engine, key, start))
    ack_at = start + ack_after if ack_after is not None else None
    recover_at = start + recover_after if recover_after is not None else None
    end = start + duration
    now = start
    while engine.state.incidents:
        moments = [t for t in (engine.next_wakeup(now), ack_at, recover_at) if t is not None]
        now = min(moments, default=end + 1)
        if now > end:
            break
        if now == ack_at:
            ack_at = None
            for incident_id in list(engine.state.incidents):
                _collect(result, engine.acknowledge(incident_id, "drill", "", now))
        if now == recover_at:
            recover_at = None
            _collect(result, recover_unit(engine, key, now))
        _collect(result, engine.tick(now))
    return result


_SENDS = {
    "notify": "firing",
    "repeat": "repeat",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
}


def _collect(result: DrillResult, out: Outcome) -> None:
    result.events.extend(out.events)
    result.texts.extend(_text_of(event, out.notifications, result.language) for event in out.events)
    result.notifications.extend(out.notifications)


def _text_of(event: Event, notifications: list[Notification], language: str) -> str | None:
    """The text of the notification this event stands for, from the same engine call."""
    kind = _SENDS.get(event.kind)
    if kind is None:
        return None  # a breach or an opening: nothing is sent
    for note in notifications:
        if (
            note.incident_id == event.incident_id
            and note.kind == kind
            and note.payload.get("step") == event.step
        ):
            return drill_text(str(note.payload["text"]), note.incident_id, language=language)
    return None  # muted, or nobody to tell


def drill_payloads(result: DrillResult, run_id: str, language: str) -> list[dict[str, Any]]:
    """Every distinct notification of the drill, in order, marked as a drill.

    The dedup key gets a `/drill-RUN` suffix: the simulated incident numbers
    start at 1 like a fresh agent's, and a receiver that dedups must neither
    drop a real alert because a drill used its key nor drop a second drill.
    """
    payloads: list[dict[str, Any]] = []
    seen: set[str] = set()
    for note in result.notifications:
        if note.dedup_key in seen:  # one step to several channels: one payload
            continue
        seen.add(note.dedup_key)
        payload = dict(note.payload)
        payload["drill"] = True
        payload["ack_code"] = payload["ack_url"] = None  # the simulated incident's, not real
        payload["dedup_key"] = f"{note.dedup_key}/drill-{run_id}"
        payload["text"] = drill_text(payload["text"], note.incident_id, language=language)
        payloads.append(payload)
    return payloads
