"""Membership of a fleet: this agent's row in the shared store, renewed at a third
of `agent.fleet.lease`, and what the others' rows say (who is live, who holds the
engine lease, duplicate names, configs that differ from this agent's).

Alone on SQLite an agent is a fleet of one, described from memory. Problems are
reported (log once per change, metrics, GET /api/v1/fleet), never merged away:
two agents with one name, or with different configs, would split checks and
ladders in ways nobody planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent import __version__
from agent.config import Config
from agent.state.fleet import LeaseGrace
from checks.base import CheckConfig, CheckResult
from core.humanize import rfc3339
from core.placement import may_run, owner
from core.status import Status
from core.throttle import Throttle

if TYPE_CHECKING:
    from agent.host import Host

log = logging.getLogger("vaktpost.fleet")
P = "vaktpost_fleet_"
# Keys that differ between the agents of one fleet by design: the rest must agree.
# How often an agent reads the results the others wrote, for its view of the fleet (the
# engine holder reads them for escalation on its own, every second).
READ_EVERY = 2.0
LOCAL_AGENT_KEYS = ("name", "listen", "state_dir", "store_password_file")


def config_hash(config: Config) -> str:
    """A short digest of everything the agents of a fleet must share."""
    data = config.model_dump(mode="json")
    data.pop("include", None)
    for key in LOCAL_AGENT_KEYS:
        data["agent"].pop(key, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def duplicate_names(members: list[dict[str, Any]]) -> list[str]:
    """Names that two live processes renew at the same time.

    A restarted agent (kill -9, then start) leaves its old row live until the lease
    runs out; that row was last seen before the new process started, so it is not
    a duplicate. Two processes that both renew after the younger one started are.
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for m in members:
        if m["live"]:
            by_name.setdefault(m["name"], []).append(m)
    out = []
    for name, rows in sorted(by_name.items()):
        rows.sort(key=lambda m: m["started_at"])
        youngest = rows[-1]["started_at"]
        if any(m["seen_at"] > youngest for m in rows[:-1]):
            out.append(name)
    return out


def _orphan_reason(check: CheckConfig, known: frozenset[str], live: list[str]) -> str:
    """Why no live agent may run this check."""
    down = sorted(n for n in known - set(live) if may_run(check.run_on, n))
    if down:
        verb = "is" if len(down) == 1 else "are"
        return f"no live agent may run it: {', '.join(down)} {verb} down"
    return f"no live agent may run it: no agent matches run_on {list(check.run_on)}"


@dataclass
class FleetView:
    members: list[dict[str, Any]] = field(default_factory=list)
    holder: dict[str, Any] | None = None
    store_up: bool = True
    error: str = ""


def _tell(listener: Callable[..., None], *args: Any) -> None:
    try:
        listener(*args)
    except Exception:  # one listener's bug must not stop membership
        log.exception("a fleet listener failed")


class FleetComponent:
    def __init__(
        self,
        host: Host,
        version: str = __version__,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.monotonic = monotonic
        self.version = version
        self.config_hash = config_hash(host.config)
        self.started_at = time.time()
        self.view = FleetView()
        self._reported: tuple[list[str], list[str]] = ([], [])
        self._task: asyncio.Task[None] | None = None
        self._reads = Throttle(READ_EVERY, monotonic)  # of the other agents' results
        self._wake = asyncio.Event()
        self._results_seq = 0  # the newest result of another agent this one has read
        self._local: frozenset[str] | None = None  # the checks this agent runs now
        self._tried = False  # whether membership was read (or tried) once
        self._grace = LeaseGrace()
        self._placement_key: object = None
        self._placement_of: object = None
        self._placement_cache: tuple[frozenset[str], dict[str, str]] = (frozenset(), {})
        self._orphan_recorded: dict[str, float] = {}  # check -> monotonic time recorded
        # Told every refresh: agent name -> (status, message), for the engine holder.
        self.agent_listeners: list[Callable[[dict[str, tuple[str, str]]], None]] = []
        # Told every believed look at the members: (member rows, the database's now),
        # for the delivery placement, which would otherwise read the same rows itself.
        self.members_listeners: list[Callable[[list[dict[str, Any]], float], None]] = []

    @property
    def lease(self) -> float:
        return float(self.host.config.agent.fleet.lease)

    # -- component -------------------------------------------------------------------
    async def start(self) -> None:
        if self.host.shared_store is None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._renew_forever(), name="fleet-membership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        store = self.host.shared_store
        if store is not None:
            with contextlib.suppress(Exception):  # a store that is gone lets the lease lapse
                await store.leave()

    def reload(self, config: Config) -> None:
        self.config_hash = config_hash(config)
        self._local = self.assignment(config.checks)
        self._wake.set()  # publish the new hash now, not a third of a lease later

    def collectors(self) -> list[Collector]:
        return [FleetCollector(self)]

    # -- membership --------------------------------------------------------------------
    async def _renew_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.lease / 3)
            self._wake.clear()
            await self.refresh()

    async def refresh(self) -> None:
        store = self.host.shared_store
        if store is None:
            return
        try:
            members, holder, now = await store.heartbeat(
                self.version, self.config_hash, len(self.host.runtime.checks), self.lease
            )
        except Exception as exc:  # the store's own health is reported by StoreCollector
            # Keep running what this agent ran: the others cannot be seen to move. At
            # start, with no view yet, it runs what it may as if alone: probing goes on.
            self.view = FleetView(self.view.members, self.view.holder, False, str(exc))
            self._grace.failed()
            if not self._tried:
                self._tried = True
                self._assign()
            return
        self._tried = True
        self.view = FleetView(members, holder, True)
        self._report()
        if not self._grace.answered(self.lease):
            return  # leases that lapsed while the store was down say nothing yet
        self._assign()
        self._mark_orphans()
        verdicts = self.agent_verdicts()
        for listener in self.agent_listeners:
            _tell(listener, verdicts)
        for members_listener in self.members_listeners:
            _tell(members_listener, members, now)

    # -- check assignment ---------------------------------------------------------------
    def live_names(self) -> list[str]:
        names = {m["name"] for m in self.view.members if m["live"]}
        names.add(self.host.config.agent.name)  # it runs, so it is live to itself
        return sorted(names)

    def assignment(self, checks: tuple[CheckConfig, ...]) -> frozenset[str] | None:
        """The checks this agent runs: those rendezvous hashing gives it among the live
        agents their run_on allows. None alone (it runs every check)."""
        if self.host.shared_store is None:
            return None
        if not self._tried:
            return frozenset()  # before the first look at the members: nothing yet
        return self._placement(checks)[0]

    def _placement(self, checks: tuple[CheckConfig, ...]) -> tuple[frozenset[str], dict[str, str]]:
        """(this agent's checks, {check no live agent may run: why}), recomputed only
        when the live agents, the known agents or the checks change: hashing every
        check at every renewal was most of an agent's CPU at 3,000 checks each."""
        live = self.live_names()
        known = frozenset(m["name"] for m in self.view.members)
        key = (tuple(live), known, id(checks))
        if self._placement_key == key and self._placement_of is checks:
            return self._placement_cache
        me, mine, orphans = self.host.config.agent.name, set(), {}
        for check in checks:
            chosen = owner(check.name, check.run_on, live)
            if chosen == me:
                mine.add(check.name)
            elif chosen is None:
                orphans[check.name] = _orphan_reason(check, known, live)
        self._placement_key, self._placement_of = key, checks
        self._placement_cache = (frozenset(mine), orphans)
        return self._placement_cache

    def _assign(self) -> None:
        local = self.assignment(self.host.config.checks)
        if local == self._local:
            return
        before, self._local = self._local, local
        self.host.runtime.apply(self.host.config.checks, local)
        if before is not None and local is not None:
            log.info(
                "checks moved",
                extra={"taken": len(local - before), "given": len(before - local)},
            )

    def local_checks(self) -> frozenset[str] | None:
        return self._local

    def _mark_orphans(self) -> None:
        """A check no live agent may run is `unknown` with the reason, on every agent's
        view; the engine holder records it at the check's interval, so its incident
        follows failures_before_alert like any other result."""
        book = self.host.book
        holding = self.holding()
        now, mono = time.time(), self.monotonic()
        orphans = self._placement(self.host.config.checks)[1]
        for name, reason in orphans.items():
            state = book.states.get(name)
            if state is None:
                continue
            result = CheckResult(Status.UNKNOWN, reason, finished_at=now)
            last = self._orphan_recorded.get(name)
            if holding and (last is None or mono - last >= state.config.interval):
                self._orphan_recorded[name] = mono
                book.record(name, result)
            book.absorb(name, result, "")
        self._orphan_recorded = {k: v for k, v in self._orphan_recorded.items() if k in orphans}

    def holding(self) -> bool:
        store, holder = self.host.shared_store, self.view.holder
        if store is None:
            return True
        return holder is not None and holder["live"] and holder["instance"] == store.instance

    def agent_verdicts(self) -> dict[str, tuple[str, str]]:
        """Each agent the members table knows, as a check: critical once its lease lapsed."""
        newest: dict[str, dict[str, Any]] = {}
        for m in self.view.members:
            have = newest.get(m["name"])
            if have is None or (m["live"], m["seen_at"]) > (have["live"], have["seen_at"]):
                newest[m["name"]] = m
        out = {}
        for name, m in newest.items():
            if m["live"]:
                out[name] = ("ok", f"agent {name} renews its lease")
            else:
                since = rfc3339(m["seen_at"])
                out[name] = ("critical", f"agent {name} has not renewed its lease since {since}")
        return out

    async def fresh(self) -> None:
        """Bring the view of the other agents' results up to date before someone reads
        it (the web layer asks before each read), at most every READ_EVERY seconds.

        Nothing else in an agent uses other agents' results: the engine holder reads
        them for its engine (and hands the rows here), so an agent nobody reads costs
        the store nothing. Read every 2 s by every agent, each result was fetched by
        every agent of the fleet: most of the fleet's CPU beyond probing."""
        if self.host.shared_store is not None and not self.holding():
            await self._reads.run(self._read_results)

    async def _read_results(self) -> None:
        store = self.host.shared_store
        assert store is not None
        try:
            seq, rows = await store.fleet_results(self._results_seq, store.agent)
        except Exception:  # the store's health is watched and reported elsewhere
            return
        self.absorb(seq, rows)

    def absorb(self, seq: int, rows: list[dict[str, Any]]) -> None:
        """Rows of other agents' results up to `seq` (as PostgresStore.fleet_results
        gives them), into this agent's result book."""
        self._results_seq = max(self._results_seq, seq)
        local = self._local or frozenset()
        for row in rows:
            if row["name"] in local:
                continue  # it moved here; this agent's own result is the newer one
            try:
                status = Status.parse(row["status"])
            except (KeyError, ValueError):  # written by a newer agent: shown once it is known
                continue
            result = CheckResult(
                status,
                row["message"],
                {k: float(v) for k, v in row["facts"].items()},
                float(row["duration_seconds"]),
                float(row["finished_at"]),
            )
            self.host.book.absorb(row["name"], result, row["agent"])

    def _report(self) -> None:
        found = (self.duplicates(), self.mismatched())
        if found == self._reported:
            return
        self._reported = found
        dup, mismatch = found
        if dup:
            log.error(
                "two live agents share a name: checks and the engine lease cannot tell them"
                " apart; give each agent.name its own value",
                extra={"names": ", ".join(dup)},
            )
        if mismatch:
            log.error(
                "agents run a config that differs from this agent's",
                extra={"agents": ", ".join(mismatch), "config_hash": self.config_hash},
            )
        if not dup and not mismatch:
            log.info("fleet membership agrees again")

    # -- what the view says -------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        if self.host.shared_store is None:
            return [
                {
                    "instance": self.host.config.agent.name,
                    "name": self.host.config.agent.name,
                    "version": self.version,
                    "config_hash": self.config_hash,
                    "checks": len(self.host.runtime.checks),
                    "started_at": self.started_at,
                    "seen_at": time.time(),
                    "expires_at": None,
                    "live": True,
                }
            ]
        return self.view.members

    def me(self) -> str:
        store = self.host.shared_store
        return self.host.config.agent.name if store is None else store.instance

    def holder(self) -> dict[str, Any] | None:
        if self.host.shared_store is None:
            name = self.host.config.agent.name
            return {"agent": name, "instance": name, "token": 1, "live": True}
        return self.view.holder

    def duplicates(self) -> list[str]:
        return duplicate_names(self.members())

    def mismatched(self) -> list[str]:
        return sorted(
            {
                m["name"]
                for m in self.members()
                if m["live"] and m["config_hash"] != self.config_hash
            }
        )

    def status(self) -> dict[str, Any]:
        """GET /api/v1/fleet and `vaktpost fleet status`."""
        me = self.me()
        holder = self.holder()
        live_holder = holder if holder is not None and holder["live"] else None
        store = self.host.shared_store
        agents = [
            {
                "name": m["name"],
                "instance": m["instance"],
                "version": m["version"],
                "config_hash": m["config_hash"],
                "config_matches": m["config_hash"] == self.config_hash,
                "checks_assigned": m["checks"],
                "started_at": m["started_at"],
                "last_seen": m["seen_at"],
                "lease_expires_at": m["expires_at"],
                "live": m["live"],
                "self": m["instance"] == me,
                "engine": live_holder is not None and live_holder["instance"] == m["instance"],
            }
            for m in self.members()
        ]
        dup, mismatch = self.duplicates(), self.mismatched()
        problems = [f"two live agents are named {name}" for name in dup]
        problems += [f"{name} runs a different config" for name in mismatch]
        if not self.view.store_up:
            problems.append(f"state store unreachable: {self.view.error}"[:300])
        return {
            "agent": self.host.config.agent.name,
            "config_hash": self.config_hash,
            "lease_seconds": self.lease,
            "store": {
                "kind": "sqlite" if store is None else "postgresql",
                "where": None if store is None else store.where,
                "up": self.view.store_up and (store is None or store.writable),
            },
            "engine": {
                "holder": None if live_holder is None else live_holder["agent"],
                "token": None if holder is None else holder["token"],
            },
            "agents_up": sum(1 for a in agents if a["live"]),
            "agents": agents,
            "duplicate_names": dup,
            "config_mismatch": mismatch,
            "problems": problems,
        }


class FleetCollector(Collector):
    def __init__(self, fleet: FleetComponent) -> None:
        self._fleet = fleet

    def collect(self) -> Iterator[Metric]:
        fleet = self._fleet
        members = fleet.members()
        live = [m for m in members if m["live"]]
        yield GaugeMetricFamily(
            f"{P}agents_up", "Agents of the fleet whose lease is live.", value=len(live)
        )
        up = GaugeMetricFamily(
            f"{P}agent_up", "1 while the agent's lease is live, 0 once it lapsed.", labels=["agent"]
        )
        names: dict[str, bool] = {}
        for m in members:
            names[m["name"]] = names.get(m["name"], False) or m["live"]
        for name, is_live in sorted(names.items()):
            up.add_metric([name], 1.0 if is_live else 0.0)
        yield up
        holder = fleet.holder()
        engine = GaugeMetricFamily(
            f"{P}engine_holder", "1 for the agent holding the engine lease.", labels=["agent"]
        )
        if holder is not None and holder["live"]:
            engine.add_metric([holder["agent"]], 1.0)
        yield engine
        yield GaugeMetricFamily(
            f"{P}engine_token",
            "The engine lease's fencing token: it grows by one at each change of holder.",
            value=0.0 if holder is None else float(holder["token"]),
        )
        assigned = GaugeMetricFamily(
            f"{P}checks_assigned", "Checks each live agent schedules.", labels=["agent"]
        )
        per: dict[str, int] = {}
        for m in live:
            per[m["name"]] = per.get(m["name"], 0) + int(m["checks"])
        for name, count in sorted(per.items()):
            assigned.add_metric([name], float(count))
        yield assigned
        yield GaugeMetricFamily(
            f"{P}duplicate_names",
            "Agent names that two live processes use at once (each must be unique).",
            value=len(fleet.duplicates()),
        )
        yield GaugeMetricFamily(
            f"{P}config_mismatch",
            "Live agents whose config hash differs from this agent's.",
            value=len(fleet.mismatched()),
        )
