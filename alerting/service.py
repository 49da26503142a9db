"""The running side of alerting: engine + store + outbox + clocks, without HTTP.

Results and clock ticks go into the engine; each outcome is queued and a
single committer persists the queue in one transaction, then wakes the
outbox. Nothing is sent that is not committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.state.fleet import alerting_store
from agent.state.postgres_errors import FencedError, is_store_error
from agent.state.sqlite import Store
from alerting.acklinks import LinkSigner
from alerting.channels.interface import Channel
from alerting.channels.registry import build_channel
from alerting.delivery_placement import DeliveryPlacement, hand_over_overdue
from alerting.engine import IncidentEngine
from alerting.forwarding import Forwarder
from alerting.model import AckReply, Incident, Outcome, Silence
from alerting.outbox import Backoff, Outbox
from alerting.plan import STORE_CHECK, fleet_agent_check
from alerting.selfwatch import heartbeat_forever, peers_forever
from alerting.significant_clocks import SignificantClocks
from core.throttle import Throttle

if TYPE_CHECKING:  # psycopg is ~9 MiB of RSS: imported only by an agent on PostgreSQL
    from agent.state.postgres import PostgresStore

# At most how often a fleet agent without the engine lease re-reads the holder's
# state, when someone reads its view (the web layer asks before each read).
FOLLOW = 2.0
# And its check tracks (one row per check), which a read model needs only to tell a
# system that has reported from one that has not: at 9,000 checks a whole read each
# 30 s was a fifth of an idle agent's store CPU.
FOLLOW_TRACKS = 300.0
log = logging.getLogger("vaktpost.alerting")
TICK = 0.25  # seconds between escalation clock ticks
STORE_WATCH = 2.0  # seconds between looks at the state store's health
RECOVERY_NOTICE = 86400.0  # a damaged store that was replaced stays an incident this long


class AlertingService:
    def __init__(
        self,
        config: Config,
        store: Store | PostgresStore,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.healthy = healthy  # the check scheduler's health: gates the heartbeat
        self.store = alerting_store(store)
        self.raw_store = store
        self.backoff = backoff
        self.clock = clock
        self.engine: IncidentEngine | None = None
        self.outbox: Outbox | None = None
        self.channels: dict[str, Channel] = {}
        self.peer_up: dict[str, bool] = {}
        # notifications_total: kept here, so it survives the outbox restart of a reload.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        # Fallbacks of channels a reload removed: where their queued rows go.
        self.removed_fallbacks: dict[str, tuple[str, ...]] = {}
        self._pending = Outcome()
        self._dirty = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._selfwatch: list[asyncio.Task[None]] = []
        # vaktpost_engine_errors_total: engine calls rolled back, loops restarted.
        self.engine_errors = 0
        self._last_error_log: dict[str, float] = {}
        self.store_failing = False  # the last persist failed; its outcome waits in _pending
        self.significant = SignificantClocks(self)
        self._link_key: bytes | None = None  # never logged: it signs the ack links
        self.link_signer: LinkSigner | None = None
        # In a fleet only the engine lease's holder runs the engine; alone, always.
        self.fleet_store = None if isinstance(store, Store) else store
        # Set while this agent holds the engine lease: the holder's loops wait on it
        # instead of waking a few times a second in every other agent for nothing.
        self.held = asyncio.Event()
        self.holding = self.fleet_store is None
        # In a fleet: which channels this agent delivers (their run_on); alone: all.
        self.placement = (
            None
            if self.fleet_store is None
            else DeliveryPlacement(self.fleet_store.agent, lambda: self.config.agent.fleet.lease)
        )
        self._results_seq = 0  # the newest result of another agent the holder has read
        # Told the rows of each of the holder's reads (seq, rows): the fleet view takes
        # them instead of reading the same rows a second time.
        self.results_listeners: list[Callable[[int, list[dict[str, Any]]], None]] = []
        self._follows = Throttle(FOLLOW)  # reads of the holder's committed state
        self._tracks_read = -FOLLOW_TRACKS
        self._members: tuple[list[dict[str, Any]], float] | None = None  # see observe_members
        self._members_seen = asyncio.Event()
        self.fleet_agents: tuple[str, ...] = ()  # every agent the members table knows
        self._renewed = 0.0  # monotonic time of the last successful take/renewal
        # Acks and silences at a non-holder go to the holder through the store.
        self.forwarding = Forwarder(self, self.fleet_store)

    @property
    def holding(self) -> bool:
        """Whether this agent runs the engine: always alone; in a fleet, the holder."""
        return self.held.is_set()

    @holding.setter
    def holding(self, value: bool) -> None:
        if value:
            self.held.set()
        else:
            self.held.clear()

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        state = await self.store.load_state()
        self.engine = IncidentEngine(self.config, state, self.fleet_agents)
        await self.significant.load()
        await self._set_ack_links()
        # The config may have changed while the agent was down: a failing check newly
        # in a system opens its incident, a system that is gone resolves its own.
        # In a fleet the holder does that when it takes the lease.
        if self.fleet_store is None:
            self.enqueue(self.engine.reconcile(self.clock()))
        else:
            self.fleet_store.fence = 0  # no token is 0: nothing persists until a take
        self._start_outbox()
        self._spawn(self._supervised("tick", self._tick_forever))
        self._spawn(self._supervised("commit", self._commit_forever))
        self._spawn(self._supervised("outbox refresh", self._refresh_pending_forever))
        if self.fleet_store is None:
            # A fleet's shared store: each agent tells of its outage itself, from a local
            # queue (agent/store_outage.py); an incident here would wait for the store.
            self._spawn(self._supervised("store watch", self._watch_store_forever))
        self._start_selfwatch()
        if self.fleet_store is not None:
            self._spawn(self._supervised("engine lease", self._lease_forever))
            self._spawn(self._supervised("fleet results", self._poll_results_forever))
            self._spawn(self._supervised("forwarded requests", self.forwarding.serve_forever))
            self._spawn(self._supervised("delivery placement", self._watch_placement))
        log.info("alerting started", extra={"open_incidents": len(state.incidents)})

    async def stop(self) -> None:
        for task in [*self._tasks, *self._selfwatch]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._selfwatch, return_exceptions=True)
        self._tasks.clear()
        self._selfwatch.clear()
        try:
            await self.commit()
        except Exception as exc:  # disk full at shutdown: say so in one line; kill -9 rules apply
            log.error("could not persist alerting state at shutdown", extra={"error": str(exc)})
        await self._stop_outbox()
        if self.fleet_store is not None and self.holding:
            with contextlib.suppress(Exception):  # the next holder need not wait it out
                await self.fleet_store.release_lease()
            self.holding = False

    def reload(self, config: Config) -> None:
        old, self.config = self.config, config
        for name, channel in old.channels.items():
            if name not in config.channels:
                self.removed_fallbacks[name] = channel.fallback
        for name in config.channels:
            self.removed_fallbacks.pop(name, None)
        if self.engine is not None and not self.holding:
            self.engine.replan(config, self.fleet_agents)
        elif self.engine is not None:
            self._spawn(self._set_ack_links())
            self.enqueue(self.engine.reconfigure(config, self.clock()))
        self._spawn(self._reconfigure_outbox())
        self._restart_selfwatch()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(coro))

    def _start_outbox(self) -> None:
        assert self.engine is not None
        self.channels = {n: build_channel(n, c) for n, c in self.config.channels.items()}
        self.outbox = Outbox(
            self.store,
            self.channels,
            dict(self.config.channels),
            self._uplink_down,
            self.backoff,
            self.clock,
            self.outcomes,
            self.config.agent.language,
            self.config.agent.timezone,
            None if self.fleet_store is None else self.fleet_store.claim_ids,
            self.placement,
        )
        self.outbox.start()
        self._spawn(self._settle_removed())

    async def _stop_outbox(self) -> None:
        if self.outbox is not None:
            await self.outbox.stop()
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.close()

    async def _reconfigure_outbox(self) -> None:
        if self.outbox is None:
            return
        outbox = self.outbox
        outbox.language = self.config.agent.language
        outbox.timezone = self.config.agent.timezone
        await outbox.reconfigure(dict(self.config.channels), build_channel)
        await self._settle_removed()

    # -- inputs -------------------------------------------------------------------------
    def _uplink_down(self) -> bool:
        # Through self: a new holder replaces the engine under a running outbox.
        return self.engine is not None and self.engine.uplink_down()

    def observe(self, check: str, status: str, message: str, now: float) -> None:
        if self.engine is not None and self.holding:
            self.enqueue(self.engine.observe(check, status, message, now))

    def failures(self, check: str) -> int | None:
        """Down results in a row as the engine counts them for failures_before_alert;
        None where this agent runs no engine (a fleet agent without the lease)."""
        if self.engine is None or not self.holding:
            return None
        track = self.engine.state.checks.get(check)
        return 0 if track is None else track.failures

    def observe_agents(self, verdicts: dict[str, tuple[str, str]]) -> None:
        """The fleet's agents as pseudo checks (name -> (status, message)): a lapsed
        agent is an incident on the default ladder, resolved when it renews again."""
        agents = tuple(sorted(verdicts))
        changed, self.fleet_agents = agents != self.fleet_agents, agents
        if self.engine is not None and not self.holding:
            if changed:  # its read model shows the holder's fleet-agent incidents too
                self.engine.replan(self.config, agents)
            return
        if self.engine is None:
            return
        now = self.clock()
        self.enqueue(self.engine.set_fleet_agents(self.fleet_agents, now))
        for agent, (status, message) in sorted(verdicts.items()):
            self.observe(fleet_agent_check(agent), status, message, now)

    def enqueue(self, out: Outcome) -> None:
        for error in out.errors:
            self._engine_error(error)
        out.errors = []
        if out:
            self._pending.merge(out)
            self._dirty.set()

    def _engine_error(self, error: str) -> None:
        """A rolled-back engine call: counted always, logged at most once a minute each."""
        self.engine_errors += 1
        now = time.monotonic()
        if now - self._last_error_log.get(error, -3600.0) >= 60.0:
            self._last_error_log[error] = now
            log.error("engine call failed and was rolled back", extra={"error": error})

    async def commit(self) -> None:
        """Persist everything queued so far; then let the outbox send it.

        A failed persist puts the outcome back in front of what came since, so it is
        retried (late, never lost): nothing of it was sent, the outbox only sends
        committed rows.
        """
        async with self._commit_lock:
            out, self._pending = self._pending, Outcome()
            self._dirty.clear()
            if not out or self.engine is None:
                return
            try:
                await self.store.persist(out, self.engine.state)
            except FencedError:
                self._depose("its write was refused: another agent holds the engine lease")
                raise
            except BaseException:
                out.merge(self._pending)
                self._pending = out
                self._dirty.set()
                self.store_failing = True
                raise
            self.store_failing = False
        if out.notifications and self.outbox is not None:
            for name in {n.channel for n in out.notifications}:
                self.outbox.wake(name)

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, via: str = "", person: str | None = None
    ) -> Incident:
        if not self.holding:
            return await self.forwarding.acknowledge(incident_id, by, comment, via, person)
        assert self.engine is not None
        now = self.clock()
        self.enqueue(self.engine.acknowledge(incident_id, by, comment, now, via, person))
        await self.commit()
        return self.engine.state.incidents[incident_id]

    async def _set_ack_links(self) -> None:
        """Signed ack links in notifications while agent.external_url is set."""
        from alerting.acklinks import LinkSigner, load_key

        assert self.engine is not None
        url = self.config.agent.external_url
        if url is None:
            self.link_signer = None
            self.engine.ack_link = None
            return
        if self._link_key is None:
            self._link_key = await load_key(self.raw_store)
        self.link_signer = LinkSigner(self._link_key, url)
        self.engine.ack_link = self.link_signer.url

    async def acknowledge_code(self, text: str, number: str) -> AckReply:
        """An SMS reply: acknowledges only when a person in `people` sent an open
        incident's code; anything else is logged and changes nothing."""
        from alerting.ackcodes import parse_reply, person_by_phone

        if not self.holding:  # its incidents are a stale copy: the holder knows the codes
            return await self.forwarding.acknowledge_code(text, number)
        assert self.engine is not None
        person = person_by_phone(self.config.people, number)
        reply = parse_reply(text)
        if person is None:
            return _refused("the sender is not a person in `people`", number)
        if reply is None:
            return _refused("the text names no ack code", number)
        code, comment = reply
        incident = self.engine.incident_by_code(code)
        if incident is None:
            return _refused(f"no open incident has code {code}", number)
        name = self.config.people[person].name or person
        await self.acknowledge(incident.id, name, comment, "sms", person)
        log.info("acknowledged by sms", extra={"incident": incident.id, "person": person})
        return AckReply(True, f"incident {incident.id} acknowledged by {name}", incident.id)

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, comment: str, by: str
    ) -> Silence:
        if not self.holding:
            return await self.forwarding.add_silence(matchers, starts_at, ends_at, comment, by)
        assert self.engine is not None
        silence = self.engine.add_silence(matchers, starts_at, ends_at, comment, by)
        await self.store.save_silence(silence, self.engine.state)
        return silence

    async def expire_silence(self, silence_id: int) -> Silence:
        if not self.holding:
            return await self.forwarding.expire_silence(silence_id)
        assert self.engine is not None
        silence = self.engine.expire_silence(silence_id, self.clock())
        await self.store.save_silence(silence, self.engine.state)
        return silence

    # -- background ------------------------------------------------------------------------
    async def _supervised(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A background loop that raises is logged, counted and started again."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.engine_errors += 1
                log.exception("alerting loop failed; restarting it", extra={"loop": name})
                await asyncio.sleep(1.0)

    def store_verdict(self, now: float) -> tuple[str, str]:
        """The state store as a check: critical while it cannot write, and for a day
        after a damaged store was moved aside (so the operator is told by incident)."""
        raw = self.raw_store
        if not getattr(raw, "writable", True):
            error = getattr(raw, "last_error", "") or "writes fail"
            return "critical", f"state store cannot write: {error}"
        recovery = getattr(raw, "recovery", None)
        if recovery is not None and now - recovery.at < RECOVERY_NOTICE:
            return "critical", (
                f"state store was damaged ({recovery.reason}); moved aside to"
                f" {recovery.moved_to.name} and a fresh store started"
            )
        return "ok", "state store writes"

    async def _watch_store_forever(self) -> None:
        while True:
            now = self.clock()
            status, message = self.store_verdict(now)
            self.observe(STORE_CHECK, status, message, now)
            await asyncio.sleep(STORE_WATCH)

    async def _tick_forever(self) -> None:
        while True:
            await self.held.wait()
            await asyncio.sleep(TICK)
            if self.engine is not None and self.holding:
                self.enqueue(self.engine.tick(self.clock()))
                await self._significant_tick()

    async def _significant_tick(self) -> None:
        """Its own guard: a failing report clock must not stop the escalation clock."""
        try:
            await self.significant.tick()
        except Exception as exc:
            self._engine_error(f"significant clocks: {type(exc).__name__}: {exc}")

    async def _commit_forever(self) -> None:
        delay = 0.5
        while True:
            await self._dirty.wait()
            try:
                await self.commit()
                delay = 0.5
            except FencedError:
                continue  # deposed (logged there); what it held is dropped, not retried
            except Exception as exc:
                # The outcome stays queued (see commit): retried until the store writes.
                log.error(
                    "could not persist alerting state; will retry",
                    extra={"error": str(exc), "retry_in": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- the engine lease (a fleet on PostgreSQL) ---------------------------------------
    async def _lease_forever(self) -> None:
        store = self.fleet_store
        assert store is not None
        while True:
            lease = float(self.config.agent.fleet.lease)
            asked = time.monotonic()
            # A holder waits no longer than its lease lasts: a request stuck on a dead
            # connection must not keep it acting as holder past the lease.
            wait = self._renewed + lease - asked if self.holding else lease
            try:
                token = await asyncio.wait_for(store.take_lease(lease), timeout=max(0.1, wait))
            except FencedError:
                raise
            except Exception as exc:
                # Unanswered: held at most a lease after the last renewal's request.
                if self.holding and time.monotonic() - self._renewed >= lease:
                    self._depose(f"the lease could not be renewed: {exc}")
            else:
                if token is None:
                    if self.holding:
                        self._depose("another agent holds the engine lease")
                else:
                    self._renewed = asked
                    if not self.holding or store.fence != token:
                        await self._take_over(token)
            await asyncio.sleep(lease / 3)

    async def _take_over(self, token: int) -> None:
        """Become the holder: the engine starts again from the stored state, which is
        what the previous holder committed under its token."""
        store = self.fleet_store
        assert store is not None
        async with self._commit_lock:
            store.fence = token
            state = await self.store.load_state()
            self.engine = IncidentEngine(self.config, state, self.fleet_agents)
            self._pending = Outcome()
            self._results_seq = 0
            self.holding = True
        await self._set_ack_links()
        self.enqueue(self.engine.reconcile(self.clock()))
        log.warning(
            "took the engine lease",
            extra={"token": token, "open_incidents": len(state.incidents)},
        )
        if self.outbox is not None:
            self.outbox.wake()

    def _depose(self, why: str) -> None:
        """Stop at once: nothing this agent's engine holds may be written any more."""
        if self.fleet_store is not None:
            self.fleet_store.fence = 0
        if self.holding:
            log.warning("gave up the engine lease", extra={"reason": why})
        self.holding = False
        self._pending = Outcome()
        self._dirty.clear()

    async def follow(self) -> None:
        """A non-holder's engine is a read model of what the holder committed: its
        incidents, silences and clocks feed this agent's API, console, readiness and
        metrics. It never ticks or observes (holding is False), so it writes nothing.

        Read when someone looks, at most every FOLLOW seconds: the web layer asks before
        it answers a read, and nothing else in a non-holder uses the model. An agent
        nobody reads costs the store nothing; polling every 2 s was a fixed share of
        every agent's CPU in the fleet benchmark."""
        if self.fleet_store is not None and not self.holding:
            await self._follows.run(self._follow)

    async def _follow(self) -> None:
        store = self.fleet_store
        assert store is not None
        # One row per check: the tracks are read far less often than the incidents.
        whole = time.monotonic() - self._tracks_read >= FOLLOW_TRACKS
        try:
            if whole:
                state = await store.load_state()
            else:
                incidents, silences = await store.load_open_state()
        except Exception:
            return  # the store's health is watched and reported elsewhere
        engine = self.engine
        if self.holding or engine is None:  # the lease moved here meanwhile
            return
        if whole:
            self._tracks_read = time.monotonic()
            engine.state = state
        else:
            engine.state.incidents, engine.state.silences = incidents, silences

    async def _poll_results_forever(self) -> None:
        """The holder reads what the other agents ran (they write results to the store
        every second; its own come from its result book)."""
        store = self.fleet_store
        assert store is not None
        while True:
            await self.held.wait()
            await asyncio.sleep(1.0)
            if not self.holding or self.engine is None:
                continue
            try:
                self._results_seq, rows = await store.fleet_results(self._results_seq, store.agent)
            except Exception:
                continue  # the store's health is watched and reported elsewhere
            now = self.clock()
            for row in rows:
                self.observe(row["name"], row["status"], row["message"], now)
            for listener in self.results_listeners:
                try:
                    listener(self._results_seq, rows)
                except Exception:  # the view's bug must not stop the engine's reads
                    log.exception("a results listener failed")

    def observe_members(self, members: list[dict[str, Any]], now: float) -> None:
        """The fleet's members at database time `now`, as the membership read them (only
        views it believes: none in the lease of grace after a store outage)."""
        self._members = (members, now)
        self._members_seen.set()

    async def _watch_placement(self) -> None:
        """At each look at the members: who may deliver each channel, and the rows of
        a channel none of whose agents came back within a lease go to its fallbacks."""
        assert self.placement is not None
        while True:
            await self._members_seen.wait()
            self._members_seen.clear()
            outbox = self.outbox
            if outbox is not None and self._members is not None:
                members, now = self._members
                self.placement.observe(members, now, outbox.configs)
                await hand_over_overdue(self.placement, outbox)

    async def _refresh_pending_forever(self) -> None:
        while True:
            outbox = self.outbox
            if outbox is not None:
                try:
                    counts = await outbox.refresh_pending()
                except Exception:  # the store's health is watched and reported elsewhere
                    counts = {}
                # Also catches rows an in-flight engine outcome queued for a removed channel.
                if set(counts) - set(outbox.channels):
                    await self._settle_removed()
            # In a fleet every agent polls the shared store: its pending counts (a
            # metric) need not be as fresh as the queries cost.
            await asyncio.sleep(2.0 if self.fleet_store is None else 5.0)

    async def _settle_removed(self) -> None:
        if self.outbox is None:
            return
        try:
            await self.outbox.settle_removed(self.removed_fallbacks)
        except Exception as exc:
            if not is_store_error(exc):
                log.exception("could not settle rows of removed channels")
            # else: the store's outage is reported once, by its own watch

    def _restart_selfwatch(self) -> None:
        """A reload may change or remove the heartbeat and the peers: start them afresh."""
        old, self._selfwatch = self._selfwatch, []
        for task in old:
            task.cancel()
        self._spawn(_reap(old))
        for url in [u for u in self.peer_up if u not in self.config.agent.peers]:
            del self.peer_up[url]
        self._start_selfwatch()

    def _start_selfwatch(self) -> None:
        agent = self.config.agent
        if agent.heartbeat is not None:
            self._selfwatch.append(
                asyncio.create_task(
                    heartbeat_forever(
                        agent.heartbeat.url,
                        agent.heartbeat.interval,
                        agent.defaults.timeout,
                        self.healthy,
                    )
                )
            )
        if agent.peers:
            self._selfwatch.append(
                asyncio.create_task(
                    peers_forever(
                        agent.peers,
                        agent.defaults.interval,
                        agent.defaults.timeout,
                        self.peer_up,
                        self.observe,
                    )
                )
            )


def _refused(why: str, number: str) -> AckReply:
    log.warning("sms reply changed nothing", extra={"reason": why, "from": number[:32]})
    return AckReply(False, why)


async def _reap(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
