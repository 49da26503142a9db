"""The continuity plan the engine follows, derived once from the config.

A unit is what an incident is about: a department's system, or one check (or
peer) in no department, which gets the default ladder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent.config import Config, EscalationStep
from agent.people_config import Person, Rotation
from checks.base import CheckConfig


@dataclass(frozen=True, slots=True)
class Unit:
    department: str | None
    department_name: str
    system: str
    system_name: str
    checks: tuple[str, ...]
    ladder: tuple[EscalationStep, ...]
    rto: float | None = None
    mtpd: float | None = None
    fallback: str = ""
    repeat: float | None = None
    ack_expires: float | None = None

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.department, self.system)

    def step_at(self, index: int) -> float:
        return self.ladder[index].after.resolve(self.rto, self.mtpd)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    failures_before_alert: int
    successes_before_recovery: int
    labels: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    is_link: bool = False
    # A drill's pseudo check: its `warning` (a missed drill) opens an incident.
    warning_opens: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    agent: str
    language: str
    timezone: str
    units: dict[tuple[str | None, str], Unit]
    checks: dict[str, CheckSpec]
    units_of_check: dict[str, tuple[tuple[str | None, str], ...]]
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)  # check -> its dependents
    group_wait: float = 0.0
    people: dict[str, Person] = field(default_factory=dict)
    rotations: dict[str, Rotation] = field(default_factory=dict)

    def targets(self, entries: tuple[str, ...], now: float) -> tuple[str, ...]:
        """Notify entries as targets: channels, and "channel#person" for people and for
        whoever a rotation has on duty at `now`."""
        from alerting.rotation import resolve

        out: list[str] = []
        for entry in entries:
            for target in resolve(entry, self.people, self.rotations, self.timezone, now):
                if target not in out:
                    out.append(target)
        return tuple(out)


STORE_CHECK = "vaktpost-state-store"


def peer_check_name(url: str) -> str:
    """A stable check-like name for a peer agent URL, e.g. peer-srv-app02-9730."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    host = parts.hostname or url
    raw = f"peer-{host}-{parts.port or 80}"
    return re.sub(r"[^a-z0-9_.-]", "-", raw.lower())


def default_ladder(config: Config) -> tuple[EscalationStep, ...]:
    if config.agent.default_escalation:
        return config.agent.default_escalation
    defaults = tuple(name for name, ch in config.channels.items() if ch.default)
    if not defaults:
        return ()
    return (EscalationStep.model_validate({"after": 0, "notify": defaults}),)


def _spec(check: CheckConfig) -> CheckSpec:
    return CheckSpec(
        name=check.name,
        failures_before_alert=check.failures_before_alert,
        successes_before_recovery=check.successes_before_recovery,
        labels=dict(check.labels),
        depends_on=tuple(check.depends_on),
        is_link=check.is_uplink,
    )


def fleet_agent_check(agent: str) -> str:
    """The pseudo check of a fleet's agent: critical while its lease has lapsed."""
    return f"fleet-agent-{agent}"


def build_plan(config: Config, fleet_agents: Iterable[str] = ()) -> Plan:
    units: dict[tuple[str | None, str], Unit] = {}
    by_check: dict[str, list[tuple[str | None, str]]] = {}
    for dept in config.departments:
        for system in dept.systems:
            unit = Unit(
                department=dept.id,
                department_name=dept.title,
                system=system.id,
                system_name=system.title,
                checks=tuple(system.checks),
                ladder=dept.escalation,
                rto=system.rto,
                mtpd=system.mtpd,
                fallback=system.fallback,
                repeat=dept.repeat,
                ack_expires=dept.ack_expires,
            )
            units[unit.key] = unit
            for name in system.checks:
                by_check.setdefault(name, []).append(unit.key)
    ladder = default_ladder(config)
    specs = {c.name: _spec(c) for c in config.checks}
    standalone = [c.name for c in config.checks if c.name not in by_check]
    for url in config.agent.peers:
        name = peer_check_name(url)
        specs[name] = CheckSpec(name, config.agent.defaults.failures_before_alert, 1)
        standalone.append(name)
    # The agent's own state store: an incident while it cannot write, and after a
    # damaged store was moved aside (AlertingService watches it).
    specs[STORE_CHECK] = CheckSpec(STORE_CHECK, 1, 1)
    standalone.append(STORE_CHECK)
    # A lapsed agent of a fleet (agent/fleet_component.py): the agents are not in the
    # config, so the service passes the names the fleet's members table knows.
    for agent in fleet_agents:
        name = fleet_agent_check(agent)
        specs[name] = CheckSpec(name, 1, 1)
        standalone.append(name)
    # A missed channel drill: a warning incident of drill-NAME (agent/drills_component.py).
    for drill in config.drills:
        name = f"drill-{drill.name}"
        specs[name] = CheckSpec(name, 1, 1, warning_opens=True)
        standalone.append(name)
    for name in standalone:
        unit = Unit(None, "", name, name, (name,), ladder)
        units[unit.key] = unit
        by_check.setdefault(name, []).append(unit.key)
    return Plan(
        agent=config.agent.name,
        language=config.agent.language,
        timezone=config.agent.timezone,
        units=units,
        checks=specs,
        units_of_check={k: tuple(v) for k, v in by_check.items()},
        dependents=_dependents(config),
        group_wait=config.agent.group_wait,
        people=dict(config.people),
        rotations=dict(config.rotations),
    )


def _dependents(config: Config) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for check in config.checks:
        for dep in check.depends_on:
            out.setdefault(dep, []).append(check.name)
    return {k: tuple(v) for k, v in out.items()}
