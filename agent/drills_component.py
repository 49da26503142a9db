"""Channel drills in the daemon: the cron clock, sends through the outbox, acks, metrics.

The drill logic is alerting/drills.py. A run's messages are committed through the
alerting service (so the outbox sends them with retry and fallback, and kill -9
neither loses nor repeats one) before the run is stored; a missed run is observed
as the warning pseudo check drill-NAME, which the next passed run resolves.
Results live in the store's per-check state under drill-NAME, key "drill".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.config import Config
from agent.people_config import Drill
from alerting import drills
from alerting.acklinks import AckLink, LinkSigner, load_key
from alerting.drills import DrillRun, DrillState, check_name
from alerting.model import AckReply, Outcome
from alerting.service import AlertingService

if TYPE_CHECKING:
    from agent.host import Host

log = logging.getLogger("vaktpost.drills")
STATE_KEY = drills.DRILL_STATE_KEY
TICK = 1.0


class DrillsComponent:
    def __init__(
        self,
        host: Host,
        service: AlertingService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = host.config
        self.service = service
        self.clock = clock
        self.states: dict[str, DrillState] = {}
        self._key: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reload(self, config: Config) -> None:
        self.config = config

    def collectors(self) -> list[Collector]:
        return [DrillCollector(self)]

    def drill(self, name: str) -> Drill | None:
        return next((d for d in self.config.drills if d.name == name), None)

    async def _load(self) -> None:
        for drill in self.config.drills:
            if drill.name not in self.states:
                data = await self.service.raw_store.get_state(check_name(drill.name), STATE_KEY)
                self.states[drill.name] = DrillState.from_json(data)

    async def _save(self, name: str) -> None:
        state = self.states[name]
        await self.service.raw_store.set_state(check_name(name), STATE_KEY, state.to_json())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick()
            except Exception as exc:  # a failing drill must not stop the others for good
                log.error("drill tick failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    # -- the clock --------------------------------------------------------------------
    async def tick(self) -> None:
        """Start runs that are due, and close runs past their ack_within as missed."""
        if self.service.engine is None or not self.service.holding:
            return  # in a fleet only the engine lease's holder runs drills
        async with self._lock:
            await self._load()
            now = self.clock()
            for drill in self.config.drills:
                state = self.states[drill.name]
                current = state.current
                if current is not None and now >= current.deadline:
                    await self._miss(drill, current, now)
                fire = drills.due(drill, state, now, self.config.agent.timezone)
                if fire is not None:
                    state.last_fire = fire
                    await self._start(drill, fire, now)
                await self._save(drill.name)

    async def run_now(self, name: str) -> DrillRun:
        """A run outside the cron (POST /api/v1/drills/NAME/run): the cron keeps its times."""
        drill = self.drill(name)
        if drill is None:
            raise KeyError(name)
        async with self._lock:
            await self._load()
            now = self.clock()
            run = await self._start(drill, now, now)
            await self._save(name)
            return run

    async def _start(self, drill: Drill, fire: float, now: float) -> DrillRun:
        state = self.states[drill.name]
        current = state.current
        if current is not None:  # the next run is due before this one was acknowledged
            await self._miss(drill, current, now)
        engine = self.service.engine
        assert engine is not None
        targets = engine.plan.targets(drill.notify, now)
        taken = {s.current.code for s in self.states.values() if s.current is not None}
        run = drills.start_run(drill, fire, now, self.config.agent.name, targets, taken)
        signer = await self._signer(drill.name)

        def link(person: str | None) -> str | None:
            if signer is None:
                return None
            token = signer.token(int(run.sent_at), None, now, person)
            return f"{signer.base_url}/drill-ack/{drill.name}/{token}"

        agent = self.config.agent
        notes = drills.notifications(
            drill, run, agent.name, agent.language, dict(self.config.people), link
        )
        # Committed before the run is stored: a crash in between sends the same keys again.
        self.service.enqueue(Outcome(notifications=notes))
        await self.service.commit()
        state.runs.append(run)
        log.info(
            "drill sent",
            extra={"drill": drill.name, "targets": ",".join(run.targets), "code": run.code},
        )
        return run

    async def _miss(self, drill: Drill, run: DrillRun, now: float) -> None:
        run.missed = True
        run.delivered = await self._delivered(run)
        message = drills.missed_message(
            drill, run, self.config.agent.language, dict(self.config.people)
        )
        log.warning("drill missed", extra={"drill": drill.name, "why": message})
        self.service.observe(check_name(drill.name), "warning", message, now)

    async def _delivered(self, run: DrillRun) -> bool | None:
        """True once every message was delivered, False if one failed, None while pending."""
        keys = set(run.dedup_keys)
        try:
            rows = [r for r in await self.service.store.deliveries() if r[0] in keys]
        except Exception:
            return run.delivered
        states = {state for _, _, state in rows}
        if "failed" in states or (not rows and keys):
            return False if "failed" in states else None
        if states <= {"delivered", "skipped"} and "delivered" in states:
            return True
        return None

    # -- acknowledging ----------------------------------------------------------------
    async def acknowledge_code(self, text: str, number: str) -> AckReply | None:
        """An SMS reply naming a drill's code; None when the text names no drill code."""
        from alerting.ackcodes import DRILL_DIGITS, parse_reply, person_by_phone

        reply = parse_reply(text)
        if reply is None or len(reply[0]) != DRILL_DIGITS:
            return None
        person = person_by_phone(self.config.people, number)
        if person is None:
            return None  # the incident path's answer already says so
        async with self._lock:
            for drill in self.config.drills:
                run = self.states.get(drill.name, DrillState()).current
                if run is not None and run.code == reply[0]:
                    name = self.config.people[person].name or person
                    await self._pass(drill, run, name, "sms", person)
                    return AckReply(True, drills.passed_message(run, "en"))
        log.warning("sms reply changed nothing", extra={"reason": "no open drill has that code"})
        return AckReply(False, f"no open drill has code {reply[0]}")

    async def acknowledge_link(self, name: str, token: str) -> str:
        """The POST of a drill's link: who passed it; LinkError when the link is no good."""
        link, run = await self.open_link(name, token)
        async with self._lock:
            drill = self.drill(name)
            if run.acked_by is not None or drill is None:
                return run.acked_by or ""
            person = link.person if link.person in self.config.people else None
            by = (self.config.people[person].name or person) if person else "link"
            await self._pass(drill, run, by, "link", person)
            return by

    async def open_link(self, name: str, token: str) -> tuple[AckLink, DrillRun]:
        from alerting.acklinks import LinkError

        signer = await self._signer(name)
        if signer is None:
            raise LinkError("Ack links are off (agent.external_url is not set).", 404)
        link = signer.verify(token, self.clock())
        state = self.states.get(name)
        run = next(
            (r for r in (state.runs if state else []) if int(r.sent_at) == link.incident_id),
            None,
        )
        if run is None or run.missed:
            raise LinkError("This drill is over: it was not acknowledged in time.", 410)
        return link, run

    async def _pass(
        self, drill: Drill, run: DrillRun, by: str, via: str, person: str | None
    ) -> None:
        now = self.clock()
        run.acked_at, run.acked_by, run.acked_via, run.acked_person = now, by, via, person
        run.delivered = True  # an acknowledged message reached someone
        state = self.states[drill.name]
        state.last_success = now
        self.service.observe(check_name(drill.name), "ok", drills.passed_message(run, "en"), now)
        await self._save(drill.name)
        log.info(
            "drill passed",
            extra={"drill": drill.name, "by": by, "via": via, "after": run.ack_seconds},
        )

    async def _signer(self, name: str) -> LinkSigner | None:
        """A signer per drill: a key derived from the ack-link key, so a drill's link can
        never pass for an incident's (nor one drill's for another's)."""
        url = self.config.agent.external_url
        if url is None:
            return None
        if self._key is None:
            self._key = await load_key(self.service.raw_store)
        derived = hmac.new(self._key, f"drill:{name}".encode(), hashlib.sha256).digest()
        return LinkSigner(derived, url)

    # -- readers ----------------------------------------------------------------------
    async def results(self, since: float, until: float) -> list[dict[str, Any]]:
        """Runs sent in [since, until), every drill, oldest first (the monthly report)."""
        await self._load()
        rows = [
            r.document() for s in self.states.values() for r in s.runs if since <= r.sent_at < until
        ]
        return sorted(rows, key=lambda d: str(d["sent_at"]))

    def document(self) -> list[dict[str, Any]]:
        out = []
        for drill in self.config.drills:
            state = self.states.get(drill.name, DrillState())
            out.append(
                {
                    "name": drill.name,
                    "notify": list(drill.notify),
                    "cron": drill.cron,
                    "ack_within_seconds": drill.ack_within,
                    "last_success": state.last_success,
                    "runs": [r.document() for r in state.runs[-10:]],
                }
            )
        return out


class DrillCollector(Collector):
    """drill_last_success_timestamp_seconds and drill_ack_seconds, per drill."""

    def __init__(self, component: DrillsComponent) -> None:
        self.component = component

    def collect(self) -> Iterator[GaugeMetricFamily]:
        success = GaugeMetricFamily(
            "vaktpost_drill_last_success_timestamp_seconds",
            "When the drill was last acknowledged in time (unix time); 0 if never.",
            labels=["drill"],
        )
        ack = GaugeMetricFamily(
            "vaktpost_drill_ack_seconds",
            "How long the last passed run of the drill took to be acknowledged.",
            labels=["drill"],
        )
        for drill in self.component.config.drills:
            state = self.component.states.get(drill.name, DrillState())
            success.add_metric([drill.name], state.last_success or 0.0)
            if state.last_ack_seconds is not None:
                ack.add_metric([drill.name], state.last_ack_seconds)
        yield success
        yield ack
