"""The engine's state and what it emits: plain dataclasses that serialise to JSON.

Nothing here does I/O; the store persists these, the engine changes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

NotificationKind = Literal["firing", "repeat", "acknowledged", "resolved", "refresh"]
EventKind = Literal[
    "opened",
    "notify",
    "repeat",
    "rto_breached",
    "mtpd_breached",
    "acknowledged",
    "ack_expired",
    "resolved",
]


@dataclass(slots=True)
class CheckTrack:
    """What the engine remembers of one check: its last status and run counts."""

    name: str
    status: str = "ok"
    message: str = ""
    failures: int = 0
    successes: int = 0
    confirmed: bool = False  # confirmed failing (failures_before_alert reached)
    since: float = 0.0  # when it was last confirmed failing

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckTrack:
        return cls(**data)


@dataclass(slots=True)
class Incident:
    id: int
    department: str | None  # None: a check (or peer) in no department
    system: str
    started_at: float
    checks: list[str] = field(default_factory=list)  # confirmed failing checks
    impacted: list[tuple[str | None, str]] = field(default_factory=list)
    # Down only through `unreachable` checks: the incident of the root cause, and the
    # root checks themselves (the grouping key; kept after recovery for the resolved notice).
    caused_by: int | None = None
    root: str = ""
    steps_taken: list[int] = field(default_factory=list)
    steps_muted: list[int] = field(default_factory=list)  # taken while silenced
    current_step: int | None = None
    repeats: int = 0  # repeats of the current step
    last_notified_at: float | None = None
    notified: list[str] = field(default_factory=list)  # channels notified so far
    acked_by: str | None = None
    acked_at: float | None = None
    ack_comment: str = ""
    ack_via: str = ""  # how the last ack came: sms, link, api, cli
    acks: int = 0
    rto_breached: bool = False
    mtpd_breached: bool = False
    resolved_at: float | None = None
    refreshed: dict[str, float] = field(default_factory=dict)  # channel -> last re-send
    # The short code an SMS reply names ("K 4711"), unique among open incidents.
    ack_code: str = ""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def status(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acked_at is not None else "firing"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["impacted"] = [list(x) for x in self.impacted]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incident:
        data = dict(data)
        data["impacted"] = [tuple(x) for x in data.get("impacted", [])]
        return cls(**data)


@dataclass(slots=True)
class Silence:
    id: int
    matchers: dict[str, str]  # check | department | system | label name -> glob
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Silence:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one channel. Delivered at least once, identified by dedup_key."""

    dedup_key: str
    channel: str
    incident_id: int
    kind: NotificationKind
    created_at: float
    payload: dict[str, Any]
    # Held until then so notifications of one root cause can go out as one message.
    due_at: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A line of the incident timeline (the drill prints these)."""

    at: float
    kind: EventKind
    incident_id: int
    step: int | None = None
    channels: tuple[str, ...] = ()
    message: str = ""


@dataclass(slots=True)
class Outcome:
    """What one engine call changed: persist all of it in one transaction, then send."""

    notifications: list[Notification] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    incidents: dict[int, Incident] = field(default_factory=dict)
    checks: dict[str, CheckTrack] = field(default_factory=dict)
    # Engine calls that raised and were rolled back (the service logs and counts them).
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.notifications.extend(other.notifications)
        self.events.extend(other.events)
        self.incidents.update(other.incidents)
        self.checks.update(other.checks)
        self.errors.extend(other.errors)

    def __bool__(self) -> bool:
        return bool(self.notifications or self.events or self.incidents or self.checks)


@dataclass(slots=True)
class EngineState:
    checks: dict[str, CheckTrack] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)  # open ones
    silences: dict[int, Silence] = field(default_factory=dict)
    next_incident_id: int = 1
    next_silence_id: int = 1


@dataclass(frozen=True, slots=True)
class AckReply:
    """What an acknowledgement by SMS code did, for the reply to the sender."""

    acknowledged: bool
    message: str
    incident_id: int | None = None
