"""The config schema of DESIGN.md as frozen pydantic models.

Check and channel unions are built from their registries, so a type is declared
in exactly one place. Loading (YAML, lines, includes, errors) is in configload.py.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.people_config import Drill, Person, Rotation
from alerting.channels.base import ChannelConfig
from alerting.channels.registry import CHANNEL_CONFIGS
from checks.base import CheckConfig
from checks.registry import CHECK_TYPES
from core.cron import parse_cron
from core.durations import Duration, Interval, Timeout, parse_duration
from core.names import Name

_FROZEN = ConfigDict(frozen=True, extra="forbid")

if TYPE_CHECKING:
    AnyCheckConfig = CheckConfig
    AnyChannelConfig = ChannelConfig
else:
    # Built from the registries: a type is declared in its own module only.
    AnyCheckConfig = Annotated[
        Union[tuple(t.config for t in CHECK_TYPES.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
    AnyChannelConfig = Annotated[
        Union[tuple(CHANNEL_CONFIGS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


def default_state_dir() -> str:
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "vaktpost")


class Defaults(BaseModel):
    model_config = _FROZEN
    interval: Interval = 60.0  # the same bounds as a check's own (docs/config.md "Limits")
    timeout: Timeout = 10.0
    failures_before_alert: Annotated[int, Field(ge=1)] = 2


class WebUser(BaseModel):
    model_config = _FROZEN
    password_hash: str
    role: Literal["viewer", "operator"] = "viewer"


class WebConfig(BaseModel):
    model_config = _FROZEN
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    users: dict[str, WebUser] = {}
    read_requires_auth: bool = False
    # Bearer token Alertmanager's webhook_config sends to POST /api/v1/alertmanager.
    alertmanager_token_file: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self


class FleetConfig(BaseModel):
    """agent.fleet: how agents sharing one store (agent.store) tell each other they live."""

    model_config = _FROZEN
    # Silence longer than this moves an agent's checks and the engine lease; renewed at a third.
    lease: Annotated[Duration, Field(ge=3, le=600)] = 15.0


class Heartbeat(BaseModel):
    model_config = _FROZEN
    url: str
    interval: Annotated[Duration, Field(gt=0)] = 60.0


_AFTER = re.compile(r"^(?:(\d+(?:\.\d+)?)%\s*)?(rto|mtpd)$")


class After(BaseModel):
    """When a step fires, from the incident start: fixed seconds, or a share of rto/mtpd."""

    model_config = _FROZEN
    seconds: float = 0.0
    of: Literal["rto", "mtpd"] | None = None
    share: float = 1.0

    def resolve(self, rto: float | None, mtpd: float | None) -> float:
        if self.of is None:
            return self.seconds
        base = rto if self.of == "rto" else mtpd
        if base is None:
            raise ValueError(f"step after {self.of} but the system has no {self.of}")
        return base * self.share

    def __str__(self) -> str:
        if self.of is None:
            from core.durations import format_duration

            return format_duration(self.seconds)
        return self.of if self.share == 1.0 else f"{self.share * 100:g}% {self.of}"


def parse_after(value: Any) -> Any:
    if isinstance(value, After | dict):
        return value
    if isinstance(value, str):
        match = _AFTER.match(value.strip())
        if match:
            share = float(match.group(1)) / 100 if match.group(1) else 1.0
            return {"of": match.group(2), "share": share}
    try:
        return {"seconds": parse_duration(value)}
    except ValueError:
        raise ValueError(
            f"invalid after {value!r}: use a duration (30m), rto, mtpd, or a share like 50% rto"
        ) from None


class EscalationStep(BaseModel):
    model_config = _FROZEN
    after: After
    notify: Annotated[tuple[str, ...], Field(min_length=1)]
    message: str | None = None

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, value: Any) -> Any:
        return parse_after(value)


class BackupRef(BaseModel):
    model_config = _FROZEN
    check: str
    rpo: Annotated[Duration, Field(gt=0)]
    restore_test_max_age: Annotated[Duration, Field(gt=0)] = 30 * 86400.0


class System(BaseModel):
    model_config = _FROZEN
    id: Name
    name: str | None = None
    checks: tuple[str, ...] = ()
    rto: Annotated[Duration, Field(gt=0)] | None = None
    mtpd: Annotated[Duration, Field(gt=0)] | None = None
    fallback: str = ""
    backups: tuple[BackupRef, ...] = ()

    @model_validator(mode="after")
    def _mtpd_after_rto(self) -> System:
        if self.rto is not None and self.mtpd is not None and self.mtpd < self.rto:
            raise ValueError("mtpd must not be shorter than rto")
        return self

    @property
    def title(self) -> str:
        return self.name or self.id


class SignificantRule(BaseModel):
    """One significant_when rule: every condition it names must hold (docs/significant.md)."""

    model_config = _FROZEN
    rto_breached: bool = False
    mtpd_breached: bool = False
    after: Annotated[Duration, Field(gt=0)] | None = None  # down at least this long
    systems: tuple[str, ...] = ()  # empty: any system of the department

    @model_validator(mode="after")
    def _says_something(self) -> SignificantRule:
        if not (self.rto_breached or self.mtpd_breached or self.after is not None):
            raise ValueError("a rule needs rto_breached, mtpd_breached or after")
        return self


class SignificantLimits(BaseModel):
    """agent.significant: the report deadlines, defaults from the law's notification stages."""

    model_config = _FROZEN
    early_warning: Annotated[Duration, Field(gt=0)] = 24 * 3600.0
    notification: Annotated[Duration, Field(gt=0)] = 72 * 3600.0
    final_report: Annotated[Duration, Field(gt=0)] = 30 * 86400.0

    @model_validator(mode="after")
    def _in_order(self) -> SignificantLimits:
        if self.notification < self.early_warning:
            raise ValueError("notification must not be due before early_warning")
        return self


def _rules(value: Any) -> Any:
    # `significant_when: mtpd_breached` and a single mapping are shorthands for a list.
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list | tuple):
        return [{v: True} if isinstance(v, str) else v for v in value]
    return value


class Department(BaseModel):
    model_config = _FROZEN
    id: Name
    name: str | None = None
    systems: tuple[System, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()
    repeat: Annotated[Duration, Field(gt=0)] | None = None
    ack_expires: Annotated[Duration, Field(gt=0)] | None = None
    significant_when: tuple[SignificantRule, ...] = ()

    @field_validator("significant_when", mode="before")
    @classmethod
    def _significant_when(cls, value: Any) -> Any:
        return _rules(value)

    @model_validator(mode="after")
    def _rule_systems(self) -> Department:
        known = {s.id for s in self.systems}
        for rule in self.significant_when:
            unknown = [s for s in rule.systems if s not in known]
            if unknown:
                raise ValueError(f"significant_when names unknown systems: {', '.join(unknown)}")
        return self

    @property
    def title(self) -> str:
        return self.name or self.id


MatchKey = str  # check | department | system | a label name
MAX_WINDOW = 366 * 86400.0


class Maintenance(BaseModel):
    model_config = _FROZEN
    match: Annotated[dict[MatchKey, str], Field(min_length=1)]
    cron: str
    duration: Annotated[Duration, Field(gt=0)]
    comment: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        # The parser the engine evaluates windows with: validate accepts exactly what runs.
        return parse_cron(value)

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: float) -> float:
        # No plan mutes alerting for over a year: a longer window is a typo (200000w).
        if value > MAX_WINDOW:
            raise ValueError(f"duration {value / 86400:g} days: a window lasts at most 366 days")
        return value


class AgentConfig(BaseModel):
    model_config = _FROZEN
    name: str = Field(default_factory=socket.gethostname)
    listen: str = "127.0.0.1:9730"
    state_dir: str = Field(default_factory=default_state_dir)
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 200
    defaults: Defaults = Defaults()
    web: WebConfig = WebConfig()
    heartbeat: Heartbeat | None = None
    peers: tuple[str, ...] = ()
    language: Literal["sv", "en"] = "sv"
    timezone: str = "Europe/Stockholm"
    default_escalation: tuple[EscalationStep, ...] = ()
    # Notifications of one root cause that come due within this window go out as one.
    group_wait: Annotated[Duration, Field(ge=0, le=3600)] = 10.0
    # How long status changes, incidents and the audit trail are kept (pruned past it).
    history: Annotated[Duration, Field(ge=86400, le=3660 * 86400)] = 400 * 86400.0
    # A shared state store (PostgreSQL) for a fleet; None: SQLite under state_dir, alone.
    store: str | None = None
    store_password_file: str | None = None
    fleet: FleetConfig = FleetConfig()
    # Significant incidents: report deadlines, and the channels their reminders go to.
    significant: SignificantLimits = SignificantLimits()
    compliance_notify: tuple[str, ...] = ()
    # Where people reach this agent from their phones (a reverse proxy): turns on ack links.
    external_url: str | None = None

    @field_validator("external_url")
    @classmethod
    def _external_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use https://host[:port][/path], the address people open")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("no user, password, query or fragment: links are added to it")
        return value.rstrip("/")

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
            raise ValueError("use postgresql://user@host[:port]/database[?sslmode=...]")
        # The URL is shown in errors and the fleet API: the password lives elsewhere.
        if parts.password is not None or "password=" in parts.query:
            raise ValueError(
                "the store URL must not carry a password: use agent.store_password_file,"
                " PGPASSWORD or ~/.pgpass"
            )
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(
                f"invalid listen address {value!r}: use host:port, e.g. 127.0.0.1:9730"
            )
        return value

    @field_validator("peers")
    @classmethod
    def _peers(cls, peers: tuple[str, ...]) -> tuple[str, ...]:
        from urllib.parse import urlsplit

        for url in peers:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"peer {url!r}: use http://host:port of another agent")
            # The URL becomes the `peer` label of peer_up; /healthz needs no login anyway.
            if parts.username or parts.password:
                raise ValueError(f"peer {parts.hostname!r}: a peer URL must not carry credentials")
        return peers

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}, e.g. Europe/Stockholm") from None
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class Config(BaseModel):
    model_config = _FROZEN
    include: tuple[str, ...] = ()
    agent: AgentConfig = Field(default_factory=AgentConfig)
    channels: dict[Name, AnyChannelConfig] = {}
    checks: tuple[AnyCheckConfig, ...] = ()
    departments: tuple[Department, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    people: dict[Name, Person] = {}
    rotations: dict[Name, Rotation] = {}
    drills: tuple[Drill, ...] = ()

    @model_validator(mode="after")
    def _drill_names(self) -> Config:
        # A missed drill is an incident of the pseudo check drill-NAME (alerting/drills.py).
        seen: set[str] = set()
        checks = {c.name for c in self.checks}
        for drill in self.drills:
            if drill.name in seen:
                raise ValueError(f"drills: two drills are named {drill.name!r}")
            if f"drill-{drill.name}" in checks:
                raise ValueError(f"drills: a check is named drill-{drill.name}, the drill's own")
            seen.add(drill.name)
        return self

    @model_validator(mode="after")
    def _compliance_channels(self) -> Config:
        unknown = [c for c in self.agent.compliance_notify if c not in self.channels]
        if unknown:
            raise ValueError(f"agent.compliance_notify: unknown channels: {', '.join(unknown)}")
        return self

    def check(self, name: str) -> CheckConfig:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)
