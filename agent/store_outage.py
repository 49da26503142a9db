"""Store outage: what each agent of a fleet does on its own while the shared store
(PostgreSQL) cannot be written.

The engine, the outbox and every ladder live in that store, so while it is gone
nothing the fleet queued can be sent, and nobody would hear of it. So every agent
watches the store's health itself; once it has been unwritable for `confirm`
seconds (CONFIRM: a pool reconnect or one failed write is not an outage) the agent
queues ONE "state store unreachable" notice in its local queue
(agent/store_outage_queue.py) and sends it straight through the channels it may
deliver itself (`run_on`), with the outbox's rules: backoff, fallback after
repeated or permanent failures, and a `requires_internet` channel handed to its
fallbacks while the uplink is down. Once the store has written again for
`confirm` seconds, one "state store reachable again" notice follows. Probing,
/metrics, /healthz and the status page never depend on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.config import Config
from agent.store_outage_queue import Delivery, Kind, Notice, NoticeQueue, notice_payload
from alerting.channels.base import ChannelConfig
from alerting.channels.interface import Channel, DeliveryError, PermanentError, RetryableError
from alerting.channels.registry import build_channel
from alerting.outbox import Backoff
from alerting.plan import default_ladder
from alerting.rotation import recipient, resolve, split_target
from core.placement import may_run
from core.redact import redact_text
from core.status import Status

if TYPE_CHECKING:
    from agent.host import Host

log = logging.getLogger("vaktpost.store_outage")
CONFIRM = 5.0  # seconds unwritable (or writing again) before the agent says so
WATCH = 0.5  # seconds between looks at the store's health and the queue
SEND_SLACK = 5.0  # beyond a channel's own timeout: a channel that ignores it is cut off
DOWN = {Status.CRITICAL, Status.UNKNOWN, Status.UNREACHABLE}


def notice_targets(config: Config, now: float) -> list[str]:
    """Who is told, as targets (channel, or channel#person), this agent's only.

    The default ladder's channels (agent.default_escalation, or `default: true`
    channels): those are told of the agent's own problems. Without one, every
    channel, since every department's escalation is on hold.
    """
    agent = config.agent
    entries = [e for step in default_ladder(config) for e in step.notify] or list(config.channels)
    out: list[str] = []
    for entry in entries:
        for target in resolve(entry, config.people, config.rotations, agent.timezone, now):
            channel = config.channels.get(split_target(target)[0])
            if channel is not None and may_run(channel.run_on, agent.name) and target not in out:
                out.append(target)
    return out


class StoreOutageNotices:
    def __init__(
        self,
        host: Host,
        *,
        confirm: float = CONFIRM,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        build: Callable[[str, ChannelConfig], Channel] = build_channel,
    ) -> None:
        self.host = host
        self.config = host.config
        self.confirm = confirm
        self.clock = clock
        self.monotonic = monotonic
        self.backoff = backoff or Backoff()
        self.build = build
        self.queue = NoticeQueue(host.config.agent.state_dir)
        self.notices_total: Counter[str] = Counter()
        self.deliveries_total: Counter[tuple[str, str]] = Counter()
        self._up = True
        self._changed = 0.0  # monotonic time the store's health last flipped
        self._task: asyncio.Task[None] | None = None

    # -- component -------------------------------------------------------------------
    async def start(self) -> None:
        store = self.host.shared_store
        if store is None:
            return  # alone on SQLite: the vaktpost-state-store incident tells people
        await asyncio.to_thread(self.queue.load)
        self._up, self._changed = store.writable, self.monotonic()
        self._task = asyncio.create_task(self._watch_forever(), name="store-outage")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def reload(self, config: Config) -> None:
        self.config = config

    def collectors(self) -> list[Collector]:
        return [] if self.host.shared_store is None else [StoreOutageCollector(self)]

    # -- the watch ---------------------------------------------------------------------
    async def _watch_forever(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # the watch must outlive any one bad look
                log.exception("store outage watch failed; continuing")
            await asyncio.sleep(WATCH)

    async def step(self) -> None:
        """One look: open or close an outage once confirmed, then send what is due."""
        store = self.host.shared_store
        if store is None:
            return
        now_m = self.monotonic()
        if store.writable != self._up:
            self._up, self._changed = store.writable, now_m
        if now_m - self._changed >= self.confirm:
            since = self.clock() - (now_m - self._changed)
            if not self._up and self.queue.outage is None:
                await self._open(since, redact_text(store.last_error), store.where)
            elif self._up and self.queue.outage is not None:
                await self._close(store.where)
        await self.deliver()

    async def _open(self, since: float, error: str, where: str) -> None:
        notice = self._notice("unreachable", since, error, where)
        self.queue.outage = since
        log.error(
            "state store unreachable: telling people through this agent's own channels",
            extra={"store": where, "error": error, "targets": ",".join(notice.targets())},
        )
        await self._enqueue(notice)

    async def _close(self, where: str) -> None:
        started = self.queue.outage
        assert started is not None
        notice = self._notice("back", started, "", where)
        self.queue.outage = None
        log.warning("state store reachable again", extra={"store": where})
        await self._enqueue(notice)

    def _notice(self, kind: Kind, started: float, error: str, where: str) -> Notice:
        now = self.clock()
        agent = self.config.agent
        payload = notice_payload(
            kind,
            agent=agent.name,
            where=where,
            error=error,
            started=started,
            now=now,
            language=agent.language,
            timezone=agent.timezone,
        )
        targets = notice_targets(self.config, now)
        return Notice(kind, now, payload, [Delivery(t, next_at=now) for t in targets])

    async def _enqueue(self, notice: Notice) -> None:
        self.notices_total[notice.kind] += 1
        self.queue.notices.append(notice)
        await self._save()

    async def _save(self) -> None:
        try:
            await asyncio.to_thread(self.queue.save)
        except OSError as exc:  # still sent from memory; only a restart would forget it
            log.error("cannot write the store outage queue", extra={"error": str(exc)})

    # -- delivery ------------------------------------------------------------------------
    async def deliver(self) -> None:
        """Send every due delivery at once: one slow or failing channel delays none.
        Fallbacks a round adds are due at once, so they go in the next round here."""
        rounds = 0
        while rounds < 4 and self.queue.due(self.clock()):
            rounds += 1
            await self._round(self.clock())
        if rounds:
            self.queue.prune()
            await self._save()

    async def _round(self, now: float) -> None:
        due = self.queue.due(now)
        sends: list[tuple[Notice, Delivery, ChannelConfig]] = []
        for notice, d in due:
            config = self.config.channels.get(split_target(d.target)[0])
            if config is None:
                self._finish(notice, d, None, PermanentError("channel no longer configured"), now)
            elif config.requires_internet and config.fallback and self._uplink_down():
                d.state, d.error = "skipped", "uplink down"
                self.deliveries_total[(split_target(d.target)[0], "skipped")] += 1
                self._fall_back(notice, d, config)
            else:
                sends.append((notice, d, config))
        errors = await asyncio.gather(*(self._send(n, d, c) for n, d, c in sends))
        done = self.clock()
        for (notice, d, config), error in zip(sends, errors, strict=True):
            self._finish(notice, d, config, error, done)

    async def _send(
        self, notice: Notice, d: Delivery, config: ChannelConfig
    ) -> DeliveryError | None:
        name, person = split_target(d.target)
        payload = dict(notice.payload)
        if person is not None and person in self.config.people:
            payload["recipient"] = recipient(person, self.config.people[person])
        try:
            channel = self.build(name, config)
        except Exception as exc:
            return PermanentError(f"cannot build channel: {type(exc).__name__}")
        try:
            async with asyncio.timeout(float(config.timeout) + SEND_SLACK):
                await channel.send(payload)
        except DeliveryError as exc:
            return exc
        except TimeoutError:
            return RetryableError(f"no answer within {float(config.timeout) + SEND_SLACK:g}s")
        except Exception as exc:  # a channel bug must not stop the other channels
            return RetryableError(f"{type(exc).__name__} in channel")
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return None

    def _finish(
        self,
        notice: Notice,
        d: Delivery,
        config: ChannelConfig | None,
        error: DeliveryError | None,
        now: float,
    ) -> None:
        name = split_target(d.target)[0]
        d.attempts += 1
        extra = {"channel": name, "dedup_key": notice.payload["dedup_key"], "attempts": d.attempts}
        if error is None:
            d.state, d.error = "delivered", ""
            self.deliveries_total[(name, "delivered")] += 1
            log.info("store outage notice delivered", extra=extra)
            return
        d.error = str(error)
        give_up = not error.retryable or now - notice.created_at >= self.backoff.give_up_after
        if give_up:
            d.state = "failed"
            self.deliveries_total[(name, "failed")] += 1
            log.error("store outage notice failed for good", extra={**extra, "error": d.error})
        else:
            d.next_at = now + self.backoff.delay(d.attempts)
            self.deliveries_total[(name, "retry")] += 1
            log.warning("store outage notice failed; will retry", extra={**extra, "error": d.error})
        if config is not None and (give_up or d.attempts >= self.backoff.fallback_after):
            self._fall_back(notice, d, config)

    def _fall_back(self, notice: Notice, d: Delivery, config: ChannelConfig) -> None:
        if d.fell_back:
            return
        d.fell_back = True
        person = split_target(d.target)[1]
        have = notice.targets()
        for name in config.fallback:
            fallback = self.config.channels.get(name)
            target = name if person is None else f"{name}#{person}"
            if fallback is None or target in have:
                continue
            if may_run(fallback.run_on, self.config.agent.name):
                notice.deliveries.append(Delivery(target, next_at=self.clock()))
                have.add(target)

    def _uplink_down(self) -> bool:
        """As the engine judges it, from this agent's own `link` results."""
        known = [
            s.result.status
            for s in self.host.book.states.values()
            if s.config.is_uplink and s.result is not None
        ]
        return bool(known) and all(status in DOWN for status in known)


async def notify_failed_start(host: Host, error: str, within: float = 10.0) -> None:
    """An agent that cannot start because its store is unreachable (serve() exits 1
    and the supervisor tries again): the outage's notice is queued once, across any
    number of failed starts, and each start tries for `within` seconds to send what
    is queued. The store's open() already waited out its pool timeout: no confirm."""
    store = host.shared_store
    if store is None:
        return
    watch = StoreOutageNotices(host)
    await asyncio.to_thread(watch.queue.load)
    if watch.queue.outage is None:
        await watch._open(watch.clock(), redact_text(error), store.where)
    deadline = watch.monotonic() + within
    while watch.queue.pending() and watch.monotonic() < deadline:
        await watch.deliver()
        await asyncio.sleep(WATCH)


class StoreOutageCollector(Collector):
    def __init__(self, watch: StoreOutageNotices) -> None:
        self._watch = watch

    def collect(self) -> Iterator[Metric]:
        watch = self._watch
        yield GaugeMetricFamily(
            "vaktpost_store_outage",
            "1 while this agent counts the shared store as unreachable (confirmed).",
            value=0.0 if watch.queue.outage is None else 1.0,
        )
        queued = CounterMetricFamily(
            "vaktpost_store_outage_notices",
            "Store outage notices this agent queued, by kind (unreachable, back).",
            labels=["kind"],
        )
        for kind in ("unreachable", "back"):
            queued.add_metric([kind], float(watch.notices_total[kind]))
        yield queued
        sent = CounterMetricFamily(
            "vaktpost_store_outage_deliveries",
            "Attempts to send a store outage notice, by channel and outcome.",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), count in sorted(watch.deliveries_total.items()):
            sent.add_metric([channel, outcome], float(count))
        yield sent
        yield GaugeMetricFamily(
            "vaktpost_store_outage_queue",
            "Store outage notice deliveries waiting in this agent's local queue.",
            value=float(watch.queue.pending()),
        )
