"""The contract every check type shares: config base, result, protocol."""

from __future__ import annotations

import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from core.durations import (
    MAX_DURATION,
    MAX_INTERVAL,
    MAX_TIMEOUT,
    Duration,
    Interval,
    Timeout,
    at_most,
    format_duration,
    parse_duration,
)
from core.errors import os_error_text
from core.names import NAME_PATTERN, Name, Regex, check_name, valid_regex
from core.placement import AgentGlob
from core.redact import redact_text
from core.status import Status, worst

# Re-exported: checks and older callers import these from here.
__all__ = [
    "MAX_DURATION",
    "MAX_INTERVAL",
    "MAX_TIMEOUT",
    "NAME_PATTERN",
    "Check",
    "CheckConfig",
    "CheckContext",
    "CheckResult",
    "CheckStateStore",
    "CheckType",
    "Duration",
    "Interval",
    "MemoryStateStore",
    "Name",
    "Regex",
    "Status",
    "Timeout",
    "at_most",
    "check_name",
    "critical",
    "format_duration",
    "ok",
    "os_error_text",
    "parse_duration",
    "unknown",
    "valid_regex",
    "warning",
    "worst",
]


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
    # Agent-name globs of a fleet that may run it (empty: any); see core/placement.py.
    run_on: tuple[AgentGlob, ...] = ()
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
    # What readiness verifies of a backup: "files" (size, shrink, a checksum file),
    # "repository" (repository check and restore test), "reported" (a job's own report).
    backup_kind: ClassVar[str] = ""
    backup_noun: ClassVar[str] = ""  # what its newest item is called: "snapshot", "file" ...
    # A `link` check: the internet uplink, which decides the requires_internet fallback.
    is_uplink: ClassVar[bool] = False
    # Its results carry plugin perfdata (vaktpost_check_perfdata).
    has_perfdata: ClassVar[bool] = False


class CheckStateStore(Protocol):
    """Small per-check state that must survive restarts (e.g. when a backup was verified)."""

    async def get_state(self, check: str, key: str) -> Any: ...

    async def set_state(self, check: str, key: str, value: Any) -> None: ...

    async def update_state(self, check: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Read, change and write one value as one step (a push or an Alertmanager
        webhook may arrive at two agents of a fleet at once); returns the new value."""
        ...


class MemoryStateStore:
    """A CheckStateStore that forgets on exit: for tests and one-off runs without state_dir."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Any] = {}

    async def get_state(self, check: str, key: str) -> Any:
        return self._data.get((check, key))

    async def set_state(self, check: str, key: str, value: Any) -> None:
        self._data[(check, key)] = value

    async def update_state(self, check: str, key: str, change: Callable[[Any], Any]) -> Any:
        value = self._data[(check, key)] = change(self._data.get((check, key)))
        return value


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
