"""The contract every check type shares: config base, result, protocol."""

from __future__ import annotations

import enum
import math
import os
import re
import socket
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

from checks.redact import redact_text

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


# Longest duration anywhere in a config (RPO, MTPD, a silence ...): ten years. Past it
# only typos and attacks remain, and datetime arithmetic overflows far beyond it.
MAX_DURATION = 3650 * 86400.0
MAX_INTERVAL = 7 * 86400.0  # check interval: a weekly probe is the slowest sensible
MAX_TIMEOUT = 86400.0  # check timeout: a full `restic check --read-data` may take hours


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `30s`, `5m`, `2h`, `1d`, `1w` or combinations like `1h30m`.

    Error texts never repeat the value: a secret pasted into the wrong key must not
    be printed by `validate`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("invalid duration: use a number with a unit, e.g. 30s")
    if isinstance(value, str):
        total = _parse_duration_text(value)
    else:
        try:
            total = float(value)
        except OverflowError:
            total = math.inf
    if math.isnan(total):
        raise ValueError("invalid duration: not a number")
    if total < 0:
        raise ValueError("invalid duration: must not be negative")
    if total > MAX_DURATION:
        raise ValueError(f"duration too long: at most {format_duration(MAX_DURATION)}")
    return total


def _parse_duration_text(value: str) -> float:
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            "invalid duration: use a number with a unit ms, s, m, h, d or w (e.g. 30s)"
        )
    return total


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


# Seconds as float inside; serialised back as a duration string. Always finite.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def at_most(limit: float) -> AfterValidator:
    def check(seconds: float) -> float:
        if seconds > limit:
            raise ValueError(f"too long: at most {format_duration(limit)}")
        return seconds

    return AfterValidator(check)


# How often a check runs and how long one probe may take (docs/config.md "Limits").
Interval = Annotated[Duration, Field(gt=0), at_most(MAX_INTERVAL)]
Timeout = Annotated[Duration, Field(gt=0), at_most(MAX_TIMEOUT)]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return value


def valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regex {value!r}: {exc}") from None
    return value


# A Python regex, checked when the config loads.
Regex = Annotated[str, AfterValidator(valid_regex)]

# Names of checks, channels, departments and systems: safe in URLs, labels and dedup keys.
Name = Annotated[str, AfterValidator(check_name)]


class Status(enum.IntEnum):
    """Values are the `check_status` metric encoding of DESIGN.md."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3
    UNREACHABLE = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def badness(self) -> int:
        """ok < warning < unreachable < unknown < critical."""
        return _BADNESS[self]

    @property
    def exit_code(self) -> int:
        return {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2}.get(self, 3)

    @classmethod
    def parse(cls, text: str) -> Status:
        return cls[text.upper()]


_BADNESS = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.UNREACHABLE: 2,
    Status.UNKNOWN: 3,
    Status.CRITICAL: 4,
}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: s.badness, default=Status.OK)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one probe found. Facts are numbers only: they become metrics."""

    status: Status
    message: str
    facts: Mapping[str, float] = field(default_factory=dict)
    duration_seconds: float = 0.0
    finished_at: float = 0.0  # unix time, set by the runner

    def __post_init__(self) -> None:
        # Messages reach the API, the page, notifications and the store, and any probe
        # may name a URL or pass on an exception that embeds one (aiohttp's do).
        redacted = redact_text(self.message)
        if redacted != self.message:
            object.__setattr__(self, "message", redacted)

    def to_json(self, name: str, type_: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": type_,
            "status": self.status.label,
            "message": self.message,
            "duration_seconds": round(self.duration_seconds, 6),
            "facts": dict(self.facts),
        }


def os_error_text(exc: OSError) -> str:
    """'connection refused' rather than "[Errno 111] Connect call failed ('10.0.0.1', 80)"."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):  # resolver codes are not errno values
        return f"cannot resolve the name: {(exc.strerror or str(exc)).lower()}"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def ok(message: str, **facts: float) -> CheckResult:
    return CheckResult(Status.OK, message, facts)


def warning(message: str, **facts: float) -> CheckResult:
    return CheckResult(Status.WARNING, message, facts)


def critical(message: str, **facts: float) -> CheckResult:
    return CheckResult(Status.CRITICAL, message, facts)


def unknown(message: str, **facts: float) -> CheckResult:
    return CheckResult(Status.UNKNOWN, message, facts)


class CheckConfig(BaseModel):
    """Keys every check has. Each type subclasses this with `type: Literal[...]`.

    interval, timeout and failures_before_alert not set in the file are taken
    from `agent.defaults` by the loader (it looks at `model_fields_set`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    type: str
    interval: Interval = 60.0
    timeout: Timeout = 10.0
    labels: dict[str, str] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    failures_before_alert: Annotated[int, Field(ge=1)] = 2
    successes_before_recovery: Annotated[int, Field(ge=1)] = 1
    severity: Literal["warning", "critical"] = "critical"

    # Fact name -> metric name (without prefix), rendered as a gauge {check=...}.
    metric_facts: ClassVar[Mapping[str, str]] = {}
    # interval/timeout/failures_before_alert of this type when the file sets none;
    # they win over agent.defaults (see agent/configload.apply_defaults).
    type_defaults: ClassVar[Mapping[str, float]] = {}
    # May stand in a system's `backups:` (readiness judges its age against the RPO).
    is_backup: ClassVar[bool] = False


class CheckStateStore(Protocol):
    """Small per-check state that must survive restarts (e.g. when a backup was verified)."""

    async def get_state(self, check: str, key: str) -> Any: ...

    async def set_state(self, check: str, key: str, value: Any) -> None: ...


class MemoryStateStore:
    """A CheckStateStore that forgets on exit: for tests and one-off runs without state_dir."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Any] = {}

    async def get_state(self, check: str, key: str) -> Any:
        return self._data.get((check, key))

    async def set_state(self, check: str, key: str, value: Any) -> None:
        self._data[(check, key)] = value


@dataclass(frozen=True)
class CheckContext:
    """What a probe may use from the agent: never mutable runtime state of others."""

    state_dir: Path
    agent_name: str
    clock: Callable[[], float] = time.time  # unix seconds; injected in tests
    store: CheckStateStore = field(default_factory=MemoryStateStore)
    timezone: str = "Europe/Stockholm"  # agent.timezone: cron schedules of push checks


class Check(Protocol):
    """A probe. `run` returns a result and never raises; the runner owns the timeout.

    A probe that holds resources between runs also has `async def aclose()`; the
    runtime calls it when the check is removed by a reload and at shutdown.
    """

    @property
    def config(self) -> CheckConfig: ...

    async def run(self) -> CheckResult: ...


@dataclass(frozen=True)
class CheckType:
    """A registered check type: its config model and how to build a probe from it."""

    config: type[CheckConfig]
    factory: Callable[[Any, CheckContext], Check]

    @property
    def name(self) -> str:
        (literal,) = typing.get_args(self.config.model_fields["type"].annotation)
        return str(literal)
