"""The incident engine: check results and clock ticks in, incident changes and notifications out.

Pure: no I/O, no clock of its own (every call takes `now`), so the daemon, the
drill and the tests run exactly this code. The caller persists each Outcome in
one transaction before it sends any of its notifications.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import fields
from functools import partial
from typing import Any

from agent.config import Config
from alerting.ackcodes import assign_code
from alerting.model import (
    CheckTrack,
    EngineState,
    Event,
    EventKind,
    Incident,
    Notification,
    NotificationKind,
    Outcome,
    Silence,
)
from alerting.mute import muted_by, next_window_edge
from alerting.payload import build_payload, dedup_key
from alerting.plan import Plan, Unit, build_plan
from alerting.rotation import SEP, recipient, split_target

FAILING = frozenset({"critical", "unknown"})
# Statuses that count towards `failures_before_alert`: an unreachable system is down too.
DOWN = FAILING | {"unreachable"}
UnitKey = tuple[str | None, str]
_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))


class IncidentEngine:
    def __init__(
        self,
        config: Config,
        state: EngineState | None = None,
        fleet_agents: tuple[str, ...] = (),
    ) -> None:
        self.state = state or EngineState()
        self.config = config
        self.fleet_agents = fleet_agents
        self.plan: Plan = build_plan(config, fleet_agents)
        # (incident, step, now, person) -> a signed ack link; set by the service when
        # agent.external_url is configured (the key lives in the store, not here).
        self.ack_link: Callable[[int, int | None, float, str | None], str] | None = None

    def reconfigure(self, config: Config, now: float) -> Outcome:
        """A reload: incidents of systems that are gone resolve (with a notice), the rest
        is re-evaluated, so a failing check newly placed in a system opens its incident."""
        old_plan = self.plan
        self.config = config
        self.plan = build_plan(config, self.fleet_agents)
        out = Outcome()
        for incident in list(self.state.incidents.values()):
            key = (incident.department, incident.system)
            if key not in self.plan.units:
                unit = old_plan.units.get(key)
                step = partial(self._removed, incident, unit, now, old_plan)
                out.merge(self._guarded(incident, step))
        out.merge(self.reconcile(now))
        return out

    def replan(self, config: Config, fleet_agents: tuple[str, ...]) -> None:
        """A read model's new plan (a fleet agent without the lease): no evaluation,
        since what the plan changes is the holder's to act on and write."""
        self.config, self.fleet_agents = config, fleet_agents
        self.plan = build_plan(config, fleet_agents)

    def set_fleet_agents(self, agents: tuple[str, ...], now: float) -> Outcome:
        """The agents a fleet knows changed: each is watched as a pseudo check, and one
        that is gone from the members table (a clean stop) resolves like a removed system."""
        if agents == self.fleet_agents:
            return Outcome()
        self.fleet_agents = agents
        return self.reconfigure(self.config, now)

    def reconcile(self, now: float) -> Outcome:
        """Re-evaluate every incident from the current check tracks (start, reload)."""

        def run() -> Outcome:
            out = Outcome()
            for name, track in self.state.checks.items():
                spec = self.plan.checks.get(name)
                if spec is None or track.confirmed:
                    continue
                # failures_before_alert may have been lowered by the new config
                if track.status in DOWN and track.failures >= spec.failures_before_alert:
                    track.confirmed = True
                    out.checks[name] = track
            for incident in list(self.state.incidents.values()):
                if (incident.department, incident.system) not in self.plan.units:
                    out.merge(self._removed(incident, None, now, self.plan))
            for unit in self.plan.units.values():
                out.merge(self._evaluate(unit, now))
            out.merge(self._update_impacted())
            return out

        return self._atomic("reconcile", run)

    # -- the guarded boundary: a call commits its whole outcome or none of it ----------
    def _atomic(self, what: str, fn: Callable[[], Outcome], *tracks: CheckTrack) -> Outcome:
        saved = self._snapshot(tracks)
        try:
            return fn()
        except Exception as exc:
            self._restore(saved)
            return Outcome(errors=[f"{what}: {type(exc).__name__}: {exc}"])

    def _guarded(self, incident: Incident, fn: Callable[[], Outcome]) -> Outcome:
        """One incident's step: on failure that incident alone is rolled back."""
        saved = copy.deepcopy(incident)
        present = incident.id in self.state.incidents
        try:
            return fn()
        except Exception as exc:
            _copy_into(incident, saved)
            if present:
                self.state.incidents[incident.id] = incident
            where = f"{incident.department or '-'}/{incident.system}"
            return Outcome(
                errors=[f"incident {incident.id} ({where}): {type(exc).__name__}: {exc}"]
            )

    def _snapshot(self, tracks: tuple[CheckTrack, ...]) -> Any:
        """Tracks come already copied (taken before the caller changed them)."""
        state = self.state
        return (
            dict(state.incidents),
            {i: copy.deepcopy(inc) for i, inc in state.incidents.items()},
            {t.name: t for t in tracks},
            state.next_incident_id,
        )

    def _restore(self, saved: Any) -> None:
        members, copies, tracks, next_id = saved
        # In place: outcomes queued earlier hold these very objects.
        for iid, incident in members.items():
            _copy_into(incident, copies[iid])
        self.state.incidents.clear()
        self.state.incidents.update(members)
        for name, track in tracks.items():
            live = self.state.checks.get(name)
            if live is None:
                self.state.checks[name] = track
            else:
                for attr in track.__slots__:
                    setattr(live, attr, getattr(track, attr))
        self.state.next_incident_id = next_id

    # -- queries ---------------------------------------------------------------
    def open_incident(self, key: UnitKey) -> Incident | None:
        for incident in self.state.incidents.values():
            if (incident.department, incident.system) == key:
                return incident
        return None

    def uplink_down(self) -> bool:
        """True while every `link` check's last result failed (no link checks: never)."""
        links = [name for name, spec in self.plan.checks.items() if spec.is_link]
        tracks = [self.state.checks.get(name) for name in links]
        known = [t for t in tracks if t is not None and t.failures + t.successes > 0]
        # An uplink that is unreachable (its own dependency is down) is no way out either.
        return bool(known) and all(t.status in DOWN for t in known)

    def is_down(self, unit: Unit) -> bool:
        return any(
            (t := self.state.checks.get(name)) is not None and t.confirmed for name in unit.checks
        )

    def current_payload(self, incident: Incident, now: float) -> dict[str, Any] | None:
        """The payload of the current step, as of now (Alertmanager re-posts it)."""
        unit = self.plan.units.get((incident.department, incident.system))
        if unit is None or incident.current_step is None:
            return None
        key = dedup_key(self.plan.agent, incident, str(incident.current_step))
        return build_payload(
            self.plan, unit, incident, self.state.checks, "repeat", key, now, "", self._by_key()
        )

    # -- inputs ------------------------------------------------------------------
    def observe(self, check: str, status: str, message: str, now: float) -> Outcome:
        """A check result. Returns what changed (often nothing)."""
        spec = self.plan.checks.get(check)
        if spec is None:
            return Outcome()
        track = self.state.checks.get(check)
        if track is None:
            track = self.state.checks[check] = CheckTrack(check, since=now)
        saved = copy.copy(track)
        before = (track.status, track.failures, track.successes, track.confirmed)
        down = DOWN | {"warning"} if spec.warning_opens else DOWN
        _count(
            track,
            status,
            message,
            now,
            spec.failures_before_alert,
            spec.successes_before_recovery,
            down,
        )
        if (track.status, track.failures, track.successes, track.confirmed) == before:
            return Outcome()  # steady: no write, no evaluation
        return self._atomic(f"check {check}", lambda: self._changed(track, before, now), saved)

    def _changed(
        self, track: CheckTrack, before: tuple[str, int, int, bool], now: float
    ) -> Outcome:
        out = Outcome(checks={track.name: track})
        if track.confirmed != before[3] or track.status != before[0]:
            for key in self.plan.units_of_check.get(track.name, ()):
                out.merge(self._evaluate(self.plan.units[key], now))
            out.merge(self._update_impacted())
        return out

    def tick(self, now: float) -> Outcome:
        """Advance escalation clocks: steps, repeats, ack expiry, RTO/MTPD breaches.

        Each incident is advanced on its own: one that raises is rolled back and
        reported in `errors`, and every other incident still escalates on time.
        """
        out = Outcome()
        for incident in list(self.state.incidents.values()):
            unit = self.plan.units.get((incident.department, incident.system))
            step: Callable[[], Outcome]
            if unit is None:
                step = partial(self._removed, incident, None, now, self.plan)
            elif not self.is_down(unit):
                step = partial(self._resolve, incident, unit, now)
            else:
                step = partial(self._escalate, incident, unit, now)
            out.merge(self._guarded(incident, step))
        for sid in [s.id for s in self.state.silences.values() if s.ends_at <= now]:
            del self.state.silences[sid]
        return out

    def acknowledge(
        self,
        incident_id: int,
        by: str,
        comment: str,
        now: float,
        via: str = "",
        person: str | None = None,
    ) -> Outcome:
        """`via` (sms, link, api, cli) lands in the event and the notice; `person` (an id
        of `people`) also gets the acknowledged notice through their own channels."""
        incident = self.state.incidents.get(incident_id)
        if incident is None:
            raise KeyError(incident_id)
        out = self._guarded(
            incident, lambda: self._acknowledge(incident, by, comment, now, via, person)
        )
        if out.errors:
            raise RuntimeError(out.errors[0])
        return out

    def incident_by_code(self, code: str) -> Incident | None:
        for incident in self.state.incidents.values():
            if incident.ack_code and incident.ack_code == code:
                return incident
        return None

    def _acknowledge(
        self, incident: Incident, by: str, comment: str, now: float, via: str, person: str | None
    ) -> Outcome:
        again = incident.acked_at is not None
        incident.acked_by, incident.acked_at, incident.ack_comment = by or "unknown", now, comment
        incident.ack_via = via
        incident.acks += 1
        out = Outcome(incidents={incident.id: incident})
        how = f" via {via}" if via else ""
        out.events.append(
            Event(
                now,
                "acknowledged",
                incident.id,
                incident.current_step,
                message=f"{incident.acked_by}{how}: {comment}".rstrip(": "),
            )
        )
        unit = self.plan.units.get((incident.department, incident.system))
        if unit is None or self._muted(incident, now):
            return out
        # A re-ack (a second person, a new comment) is recorded, but people already
        # told it was acknowledged are not told again; the person who acked is.
        told = [] if again else list(incident.notified)
        if person is not None:
            told += [t for t in self.plan.targets((f"person:{person}",), now) if t not in told]
        if told:
            suffix = f"ack-{incident.acks}"
            out.notifications += self._notify(unit, incident, told, "acknowledged", suffix, now)
        return out

    def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, comment: str, by: str
    ) -> Silence:
        silence = Silence(
            self.state.next_silence_id, dict(matchers), starts_at, ends_at, comment, by
        )
        self.state.next_silence_id += 1
        self.state.silences[silence.id] = silence
        return silence

    def expire_silence(self, silence_id: int, now: float) -> Silence:
        silence = self.state.silences.pop(silence_id)
        silence.ends_at = min(silence.ends_at, now)
        return silence

    # -- incidents ---------------------------------------------------------------
    def _evaluate(self, unit: Unit, now: float) -> Outcome:
        incident = self.open_incident(unit.key)
        failing = [n for n in unit.checks if (t := self.state.checks.get(n)) and t.confirmed]
        if failing and incident is None:
            return self._open(unit, failing, now)
        if incident is not None and not failing:
            return self._resolve(incident, unit, now)
        if incident is not None and failing != incident.checks:
            incident.checks = failing
            return Outcome(incidents={incident.id: incident})
        return Outcome()

    def _open(self, unit: Unit, failing: list[str], now: float) -> Outcome:
        incident = Incident(
            self.state.next_incident_id, unit.department, unit.system, now, checks=failing
        )
        taken = {i.ack_code for i in self.state.incidents.values()}
        incident.ack_code = assign_code(f"{self.plan.agent}/{incident.id}", taken)
        self.state.next_incident_id += 1
        self.state.incidents[incident.id] = incident
        out = Outcome(incidents={incident.id: incident})
        out.events.append(Event(now, "opened", incident.id, message=", ".join(failing)))
        out.merge(self._update_impacted())
        out.merge(self._escalate(incident, unit, now))
        return out

    def _resolve(
        self, incident: Incident, unit: Unit | None, now: float, message: str = ""
    ) -> Outcome:
        incident.resolved_at = now
        del self.state.incidents[incident.id]
        out = Outcome(incidents={incident.id: incident})
        out.events.append(
            Event(
                now,
                "resolved",
                incident.id,
                incident.current_step,
                tuple(incident.notified),
                message,
            )
        )
        if unit is not None:
            # Everyone who was told it is down hears that it is over, muted or not.
            out.notifications += self._notify(
                unit, incident, incident.notified, "resolved", "resolved", now, message
            )
        return out

    def _removed(self, incident: Incident, unit: Unit | None, now: float, plan: Plan) -> Outcome:
        """A reload (or a restart on a new config) took the incident's system away."""
        if unit is None:  # the old plan is unknown (restart): enough to tell who was paged
            unit = Unit(
                incident.department,
                "",
                incident.system,
                incident.system,
                tuple(incident.checks),
                (),
            )
        current, self.plan = self.plan, plan
        try:
            return self._resolve(incident, unit, now, REMOVED)
        finally:
            self.plan = current

    def _escalate(self, incident: Incident, unit: Unit, now: float) -> Outcome:
        out = Outcome()
        elapsed = now - incident.started_at
        self._breaches(incident, unit, elapsed, out)
        self._refresh(incident, unit, now, out)
        if incident.acked_at is not None:
            if unit.ack_expires is None or now < incident.acked_at + unit.ack_expires:
                return out
            self._expire_ack(incident, now, out)
        muted = self._muted(incident, now)
        due = [
            i
            for i in range(len(unit.ladder))
            if i not in incident.steps_taken and _step_at(unit, i) <= elapsed
        ]
        for index in due:
            self._take_step(incident, unit, index, muted, now, out)
        if not due and muted is None and incident.current_step in incident.steps_muted:
            # A step that came due during a silence is delivered when the silence ends.
            step = incident.current_step
            assert step is not None
            incident.steps_muted.remove(step)
            self._send_step(incident, unit, step, "notify", str(step), now, out)
        elif not due and muted is None and self._repeat_due(incident, unit, now):
            # A muted repeat is not sent and not counted: repeat numbers stay dense.
            incident.repeats += 1
            incident.last_notified_at = now
            out.incidents[incident.id] = incident
            current = incident.current_step
            assert current is not None
            suffix = f"{current}/repeat-{incident.repeats}"
            self._send_step(incident, unit, current, "repeat", suffix, now, out)
        return out

    def _refresh(self, incident: Incident, unit: Unit, now: float, out: Outcome) -> None:
        """Channels that forget what is not re-sent (Alertmanager drops an alert not
        posted again within its resolve_timeout) get the current state again, through
        the outbox like any notification: retried, recorded, with fallbacks."""
        for name in incident.notified:
            every = self._refresh_every(name)
            if every is None:
                continue
            last = incident.refreshed.get(name, incident.last_notified_at or incident.started_at)
            if now - last < every:
                continue
            incident.refreshed[name] = now
            out.incidents[incident.id] = incident
            suffix = f"{incident.current_step}/refresh-{int(now)}"
            out.notifications += self._notify(unit, incident, (name,), "refresh", suffix, now)

    def _refresh_every(self, name: str) -> float | None:
        config = self.config.channels.get(name)  # `CHANNEL#person` entries are never refreshed
        return config.refresh_every() if config is not None else None

    def _expire_ack(self, incident: Incident, now: float, out: Outcome) -> None:
        incident.acked_at = None
        incident.acked_by = None
        # Escalation resumes: the current step is re-notified at once.
        incident.last_notified_at = None
        out.incidents[incident.id] = incident
        out.events.append(Event(now, "ack_expired", incident.id, incident.current_step))

    def _repeat_due(self, incident: Incident, unit: Unit, now: float) -> bool:
        if incident.current_step is None:
            return False
        if incident.last_notified_at is None:
            return True  # an acknowledgement lapsed
        return unit.repeat is not None and now >= incident.last_notified_at + unit.repeat

    def _take_step(
        self,
        incident: Incident,
        unit: Unit,
        index: int,
        muted: str | None,
        now: float,
        out: Outcome,
    ) -> None:
        incident.steps_taken.append(index)
        incident.current_step = index
        incident.repeats = 0
        incident.last_notified_at = now
        out.incidents[incident.id] = incident
        if muted is None:
            self._send_step(incident, unit, index, "notify", str(index), now, out)
        else:
            incident.steps_muted.append(index)
            out.events.append(Event(now, "notify", incident.id, index, (), f"muted by {muted}"))

    def _send_step(
        self,
        incident: Incident,
        unit: Unit,
        index: int,
        kind: str,
        suffix: str,
        now: float,
        out: Outcome,
    ) -> None:
        step = unit.ladder[index]
        # Resolved now: the person on duty when the step fires is the one paged.
        channels = self.plan.targets(tuple(step.notify), now)
        for name in channels:
            if name not in incident.notified:
                incident.notified.append(name)
        nkind: NotificationKind = "repeat" if kind == "repeat" else "firing"
        out.notifications += self._notify(
            unit, incident, channels, nkind, suffix, now, step.message or ""
        )
        out.incidents[incident.id] = incident
        event_kind: EventKind = "repeat" if kind == "repeat" else "notify"
        out.events.append(Event(now, event_kind, incident.id, index, channels, step.message or ""))

    def _breaches(self, incident: Incident, unit: Unit, elapsed: float, out: Outcome) -> None:
        now = incident.started_at + elapsed
        if unit.rto is not None and not incident.rto_breached and elapsed >= unit.rto:
            incident.rto_breached = True
            out.incidents[incident.id] = incident
            out.events.append(Event(now, "rto_breached", incident.id, incident.current_step))
        if unit.mtpd is not None and not incident.mtpd_breached and elapsed >= unit.mtpd:
            incident.mtpd_breached = True
            out.incidents[incident.id] = incident
            out.events.append(Event(now, "mtpd_breached", incident.id, incident.current_step))

    def _muted(self, incident: Incident, now: float) -> str | None:
        return muted_by(
            incident, self.plan, self.state.silences.values(), self.config.maintenance, now
        )

    def _notify(
        self,
        unit: Unit,
        incident: Incident,
        channels: Iterable[str],
        kind: NotificationKind,
        suffix: str,
        now: float,
        message: str = "",
    ) -> list[Notification]:
        key = dedup_key(self.plan.agent, incident, suffix)
        link = None
        if self.ack_link is not None and kind in ("firing", "repeat"):
            link = self.ack_link(incident.id, incident.current_step, now, None)
        payload = build_payload(
            self.plan,
            unit,
            incident,
            self.state.checks,
            kind,
            key,
            now,
            message,
            self._by_key(),
            ack_url=link,
        )
        due_at = None
        if kind not in ("acknowledged", "refresh") and self._groupable(incident):
            payload["group_key"] = incident.root
            due_at = now + self.plan.group_wait
        out = []
        for target in channels:
            channel, person = split_target(target)
            if person is None:
                out.append(Notification(key, channel, incident.id, kind, now, payload, due_at))
            else:
                mine = self._to_person(key, person, payload, now)
                out.append(
                    Notification(mine["dedup_key"], channel, incident.id, kind, now, mine, due_at)
                )
        return out

    def _to_person(
        self, key: str, person: str, payload: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """One person's copy: their address in the payload, their own dedup key (two
        people on one channel are two messages), their own group and ack link."""
        mine = dict(payload)
        if mine.get("ack_url") and self.ack_link is not None:
            link = self.ack_link(mine["incident_id"], mine["step"], now, person)
            mine["text"] = str(mine["text"]).replace(mine["ack_url"], link)
            mine["ack_url"] = link
        known = self.plan.people.get(person)
        mine["recipient"] = recipient(person, known) if known else {"id": person, "name": person}
        mine["dedup_key"] = f"{key}/to-{person}"
        mine["grouped"] = [mine["dedup_key"]]
        if "group_key" in mine:
            mine["group_key"] = f"{mine['group_key']}{SEP}{person}"
        return mine

    def _by_key(self) -> dict[UnitKey, Incident]:
        return {(i.department, i.system): i for i in self.state.incidents.values()}

    def _groupable(self, incident: Incident) -> bool:
        """Held for group_wait: incidents whose root cause may take other systems down."""
        if self.plan.group_wait <= 0 or not incident.root:
            return False
        return incident.caused_by is not None or any(
            self.plan.dependents.get(name) for name in incident.root.split(",")
        )

    # -- dependencies --------------------------------------------------------------
    def _update_impacted(self) -> Outcome:
        """Link every incident to its root cause, and list on the root who else is hit."""
        out = Outcome()
        if not self.state.incidents:
            return out
        for incident in self.state.incidents.values():
            root, cause = self._cause(incident)
            if (incident.root, incident.caused_by) != (root, cause):
                incident.root, incident.caused_by = root, cause
                out.incidents[incident.id] = incident
            origin = self.state.incidents.get(cause) if cause is not None else None
            key = (incident.department, incident.system)
            if origin is not None and key not in origin.impacted:
                origin.impacted.append(key)
                out.incidents[origin.id] = origin
        for track in self.state.checks.values():
            if track.status != "unreachable":
                continue
            for root in self._roots(track.name, set()):
                for key in self.plan.units_of_check.get(root, ()):
                    origin = self.open_incident(key)
                    if origin is None:
                        continue
                    for hit in self.plan.units_of_check.get(track.name, ()):
                        if hit != key and hit not in origin.impacted:
                            origin.impacted.append(hit)
                            out.incidents[origin.id] = origin
        return out

    def _roots(self, name: str, seen: set[str]) -> set[str]:
        """The failing checks at the bottom of an unreachable check's depends_on chain."""
        roots: set[str] = set()
        spec = self.plan.checks.get(name)
        if spec is None or name in seen:
            return roots
        seen.add(name)
        for dep in spec.depends_on:
            track = self.state.checks.get(dep)
            if track is None:  # never seen here, yet the runner blamed it: it is the cause
                roots.add(dep)
            elif track.status == "unreachable":
                roots |= self._roots(dep, seen) or {dep}
            elif track.status in FAILING or track.confirmed:
                roots.add(dep)
        return roots

    def _cause(self, incident: Incident) -> tuple[str, int | None]:
        """(root checks as a key, the root's incident) — the incident itself unless every
        one of its failing checks is unreachable."""
        checks = incident.checks
        own = [
            c
            for c in checks
            if (t := self.state.checks.get(c)) is None or t.status != "unreachable"
        ]
        if own or not checks:
            return ",".join(sorted(own)), None
        roots: set[str] = set()
        for name in checks:
            roots |= self._roots(name, set())
        if not roots:  # the root recovered first: this one still belongs to it
            return incident.root or ",".join(sorted(checks)), incident.caused_by
        for name in sorted(roots):
            for key in self.plan.units_of_check.get(name, ()):
                origin = self.open_incident(key)
                if origin is not None and origin.id != incident.id:
                    return ",".join(sorted(roots)), origin.id
        return ",".join(sorted(roots)), None

    # -- the drill's clock ------------------------------------------------------------
    def next_wakeup(self, now: float) -> float | None:
        """The next moment tick() could change something (the drill jumps there)."""
        times: list[float] = []
        for incident in self.state.incidents.values():
            unit = self.plan.units.get((incident.department, incident.system))
            if unit is not None:
                times += _incident_times(incident, unit)
                for name in incident.notified:
                    every = self._refresh_every(name)
                    if every is not None:
                        base = incident.last_notified_at or incident.started_at
                        times.append(incident.refreshed.get(name, base) + every)
        if self.state.incidents:
            times += [s.ends_at for s in self.state.silences.values()]
            times += [s.starts_at for s in self.state.silences.values()]
            for window in self.config.maintenance:
                edge = next_window_edge(window, self.plan.timezone, now)
                if edge is not None:
                    times.append(edge)
        later = [t for t in times if t > now]
        return min(later) if later else None


REMOVED = "removed from the config"


def _copy_into(target: Incident, source: Incident) -> None:
    for name in _INCIDENT_FIELDS:
        setattr(target, name, copy.deepcopy(getattr(source, name)))


def _count(
    track: CheckTrack,
    status: str,
    message: str,
    now: float,
    failures_needed: int,
    successes_needed: int,
    down: frozenset[str] = DOWN,
) -> None:
    # Counters saturate at their thresholds, so a steady check causes no writes.
    track.message = message
    track.status = status
    if status in down:
        # `unreachable` counts too: the people who use the system cannot reach it either.
        track.failures = min(track.failures + 1, failures_needed)
        track.successes = 0
        if not track.confirmed and track.failures >= failures_needed:
            track.confirmed = True
            track.since = now
    else:
        track.successes = min(track.successes + 1, successes_needed)
        track.failures = 0
        if track.confirmed and track.successes >= successes_needed:
            track.confirmed = False
            track.since = now


def _step_at(unit: Unit, index: int) -> float:
    try:
        return unit.step_at(index)
    except ValueError:  # `after: rto` on a system without an rto: never due
        return float("inf")


def _incident_times(incident: Incident, unit: Unit) -> list[float]:
    start = incident.started_at
    times = [
        start + _step_at(unit, i) for i in range(len(unit.ladder)) if i not in incident.steps_taken
    ]
    times += [start + x for x in (unit.rto, unit.mtpd) if x is not None]
    if incident.acked_at is not None and unit.ack_expires is not None:
        times.append(incident.acked_at + unit.ack_expires)
    if unit.repeat is not None and incident.last_notified_at is not None:
        times.append(incident.last_notified_at + unit.repeat)
    return [t for t in times if t != float("inf")]
