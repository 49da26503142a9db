"""push: a job reports in (Healthchecks' model); silence past its due time is the failure.

The inbound endpoint (agent/signals_component.py) records pings with `record`
in the agent's state store; `run` judges that state against the clock. Both go
through the store, so the last success survives restarts.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from checks.base import (
    CheckConfig,
    CheckContext,
    CheckResult,
    CheckType,
    critical,
    ok,
    unknown,
    warning,
)
from core.cron import cron_schedule, parse_cron
from core.durations import Duration, format_duration
from core.humanize import ago, duration, rfc3339
from core.redact import MASK

STATE_KEY = "push"
FIRST_SEEN_KEY = "first_seen"
MAX_MESSAGE = 1000  # characters of a ping's body kept as the last message
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class PushConfig(CheckConfig):
    type: Literal["push"]
    token: SecretStr | None = None  # usually ${VAR}: never written in the file itself
    token_file: Path | None = None
    period: Annotated[Duration, Field(gt=0)] | None = None
    schedule: str | None = None  # cron, in agent.timezone
    grace: Annotated[Duration, Field(ge=0)] = 3600.0
    max_runtime: Annotated[Duration, Field(gt=0)] | None = None

    metric_facts: ClassVar[Mapping[str, str]] = {
        "last_success_timestamp": "push_last_success_timestamp_seconds",
    }
    # The state changes only when a job reports: one bad verdict is already confirmed.
    type_defaults: ClassVar[Mapping[str, float]] = {"failures_before_alert": 1}
    is_backup: ClassVar[bool] = True
    backup_kind: ClassVar[str] = "reported"
    backup_noun: ClassVar[str] = "successful run"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else parse_cron(value)

    @model_validator(mode="after")
    def _consistent(self) -> PushConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of token or token_file")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token too short: use at least 16 characters")
        if (self.period is None) == (self.schedule is None):
            raise ValueError("set exactly one of period or schedule")
        return self

    def secret(self) -> str:
        """The token; OSError when token_file cannot be read."""
        if self.token is not None:
            return self.token.get_secret_value()
        assert self.token_file is not None
        return self.token_file.read_text(encoding="utf-8").strip()

    def token_matches(self, offered: str) -> bool:
        try:
            expected = self.secret()
        except OSError:
            return False
        if not expected:
            return False  # an empty token file must not let an empty token in
        return hmac.compare_digest(offered.encode(), expected.encode())


@dataclass(frozen=True)
class PushState:
    last_success: float | None = None
    last_ping: float | None = None
    last_kind: str | None = None  # success | fail | start
    exit_status: int | None = None
    started_at: float | None = None  # a start not yet followed by success or fail
    message: str = ""

    @classmethod
    def from_json(cls, data: Any) -> PushState:
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        try:
            return cls(**known)
        except TypeError:
            return cls()  # a damaged record: treated as never pinged


def clean_message(body: bytes, secret: str = "") -> str:
    """A ping body as the last message: text, its end (where a job log says how it went),
    without the token a script may have echoed, control characters or runs of blanks."""
    text = body.decode("utf-8", errors="replace")
    if secret:
        text = text.replace(secret, MASK)
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > MAX_MESSAGE:
        text = "…" + text[-(MAX_MESSAGE - 1) :]
    return text


def apply_ping(
    state: PushState, kind: str, now: float, message: str, exit_status: int | None = None
) -> PushState:
    """The state after one ping. kind: success, fail or start (exit statuses map to these)."""
    if kind == "start":
        return replace(state, last_ping=now, started_at=now)
    base = replace(
        state,
        last_ping=now,
        last_kind=kind,
        exit_status=exit_status,
        started_at=None,
        message=message,
    )
    return replace(base, last_success=now) if kind == "success" else base


async def load(ctx: CheckContext, name: str) -> PushState:
    return PushState.from_json(await ctx.store.get_state(name, STATE_KEY))


async def record_ping(
    ctx: CheckContext, name: str, kind: str, now: float, message: str, exit_status: int | None
) -> None:
    """One ping as one read-change-write of the store: pings of one job that reach two
    agents of a fleet at once both count."""

    def apply(value: Any) -> dict[str, Any]:
        return asdict(apply_ping(PushState.from_json(value), kind, now, message, exit_status))

    await ctx.store.update_state(name, STATE_KEY, apply)


def due_at(config: PushConfig, since: float, timezone: str) -> float | None:
    """When the next success is due after `since` (the last success, or first seen)."""
    if config.period is not None:
        return since + config.period
    assert config.schedule is not None
    return cron_schedule(config.schedule, timezone).next_after(since)


def evaluate(
    config: PushConfig, state: PushState, first_seen: float, now: float, timezone: str
) -> CheckResult:
    """The verdict on the recorded pings; `first_seen` is when the agent began watching."""
    facts: dict[str, float] = {}
    if state.last_success is not None:
        facts["last_success_timestamp"] = state.last_success
        facts["age_seconds"] = max(0.0, now - state.last_success)
    if state.last_ping is not None:
        facts["last_ping_timestamp"] = state.last_ping
    said = f": {state.message}" if state.message else ""
    if state.last_kind == "fail":
        what = "failed" if state.exit_status is None else f"exited {state.exit_status}"
        at = state.last_ping or now
        return critical(f"job {what} {ago(now, at)}{said}", **facts)
    limit = config.max_runtime
    if state.started_at is not None and limit is not None and now - state.started_at > limit:
        return critical(
            f"started {ago(now, state.started_at)} and not finished within "
            f"max_runtime {format_duration(limit)}",
            **facts,
        )
    since = state.last_success if state.last_success is not None else first_seen
    due = due_at(config, since, timezone)
    if due is None:
        return unknown("the schedule never fires again", **facts)
    last = (
        f"last success {ago(now, state.last_success)} ({rfc3339(state.last_success)})"
        if state.last_success is not None
        else "no success reported yet"
    )
    if now > due + config.grace:
        reported = (
            f"no report since {rfc3339(state.last_success)}"
            if state.last_success is not None
            else f"no report since watching began {ago(now, since)}"
        )
        return critical(
            f"{reported}: due {ago(now, due)}, grace {format_duration(config.grace)}", **facts
        )
    if now > due:
        return warning(f"late: due {ago(now, due)}, {last}{said}", **facts)
    running = f"; running for {duration(now - state.started_at)}" if state.started_at else ""
    return ok(f"{last}{said}{running}", **facts)


class PushCheck:
    def __init__(self, config: PushConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    async def run(self) -> CheckResult:
        name, now = self.config.name, self.ctx.clock()
        try:
            state = await load(self.ctx, name)
            # Its own key: the endpoint writes STATE_KEY concurrently and must not lose a ping.
            first_seen = await self.ctx.store.get_state(name, FIRST_SEEN_KEY)
            if not isinstance(first_seen, int | float):
                first_seen = now
                await self.ctx.store.set_state(name, FIRST_SEEN_KEY, now)
        except Exception as exc:  # the store may be broken: say so, do not guess
            return unknown(f"push state unreadable: {type(exc).__name__}")
        return evaluate(self.config, state, float(first_seen), now, self.ctx.timezone)


TYPE = CheckType(PushConfig, PushCheck)
