"""The outbox worker: delivers committed notifications at least once.

One lane per channel takes its pending rows strictly in order (head-of-line:
while the oldest row waits for a retry, younger ones wait too, so a receiver
that comes back gets everything in the order it was queued), sends up to
`concurrency` at a time, and records every outcome before it takes more.
Retries back off exponentially with jitter. A `requires_internet` channel hands
its rows to its `fallback` channels while the uplink is down, and also after
repeated or permanent failures. Rows queued for a channel that a reload removed
go to that channel's fallbacks that still exist, else they are dropped.
In a fleet a channel's `run_on` says which agents start its lane
(alerting/delivery_placement.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from agent.state.interface import AlertingStore, OutboxRow, OutboxUpdate
from alerting.channels.base import ChannelConfig
from alerting.channels.interface import Channel, DeliveryError, RetryableError
from alerting.grouping import batches, group_of, merge, ready

log = logging.getLogger("vaktpost.outbox")
# How many pending rows of a lane are looked at at once: a group of one root cause
# (a dead uplink under many systems) must fit, to go out as one message.
HEAD_SCAN = 512
UPLINK_POLL = 0.25  # how often a send in flight on a requires_internet channel looks up


class Placement(Protocol):
    """Which channels this agent of a fleet may deliver (alerting/delivery_placement.py)."""

    def delivers_here(self, config: ChannelConfig) -> bool: ...

    def undeliverable(self, channel: str) -> bool: ...


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    # A receiver that comes back is drained within about this long (was 300 s: a
    # 135 s outage took 92-105 s to drain in the backoff phase).
    cap: float = 30.0
    jitter: float = 0.2  # +-20 %
    fallback_after: int = 3  # failed attempts before the fallbacks are used too
    give_up_after: float = 86400.0  # seconds since queued

    def delay(self, attempts: int) -> float:
        raw = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return float(raw * random.uniform(1 - self.jitter, 1 + self.jitter))


class Outbox:
    def __init__(
        self,
        store: AlertingStore,
        channels: dict[str, Channel],
        configs: dict[str, ChannelConfig],
        uplink_down: Callable[[], bool],
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        outcomes: Counter[tuple[str, str]] | None = None,
        language: str = "sv",
        timezone: str = "Europe/Stockholm",
        claim: Callable[[list[int]], Awaitable[set[int]]] | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.store = store
        # In a fleet: take the rows about to be sent, so no other agent sends them too.
        self.claim = claim
        # In a fleet: lanes only for the channels whose run_on allows this agent.
        self.placement = placement
        self.language = language
        self.timezone = timezone
        self.channels = channels
        self.configs = configs
        self.uplink_down = uplink_down
        self.backoff = backoff or Backoff()
        self.clock = clock
        # (channel, outcome) -> count; passed in, so it outlives this outbox across reloads.
        self.outcomes: Counter[tuple[str, str]] = Counter() if outcomes is None else outcomes
        self.pending: dict[str, int] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._settle_lock = asyncio.Lock()
        self._reconfigure_lock = asyncio.Lock()
        self._closing: set[str] = set()  # lanes asked to stop after their current send

    def start(self) -> None:
        for name in self.channels:
            self._start_lane(name)

    def _start_lane(self, name: str) -> None:
        if self.placement is not None and not self.placement.delivers_here(self.configs[name]):
            return  # another agent's channel: this one never claims its rows
        self._wake[name] = asyncio.Event()
        self._wake[name].set()
        self._tasks[name] = asyncio.create_task(self._lane(name), name=f"outbox-{name}")

    async def reconfigure(
        self,
        configs: dict[str, ChannelConfig],
        build: Callable[[str, ChannelConfig], Channel],
        grace: float = 30.0,
    ) -> None:
        """A reload: only channels whose config changed are rebuilt.

        The lane of a changed or removed channel finishes the send it is in and
        records its outcome before it stops (cancelling it would send that row
        again after the reload); only then does the new lane start, so no row is
        ever taken by two lanes. Unchanged channels keep their lane untouched.
        """
        async with self._reconfigure_lock:
            gone = [n for n in self.channels if configs.get(n) != self.configs.get(n)]
            await asyncio.gather(*(self._stop_lane(n, grace) for n in gone))
            for name in gone:
                channel = self.channels.pop(name)
                with contextlib.suppress(Exception):
                    await channel.close()
            self.configs.clear()
            self.configs.update(configs)
            for name, config in configs.items():
                if name not in self.channels:
                    self.channels[name] = build(name, config)
                    self._start_lane(name)

    async def _stop_lane(self, name: str, grace: float) -> None:
        task = self._tasks.get(name)
        if task is None:
            return
        self._closing.add(name)
        self._wake[name].set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            log.exception("outbox lane failed while stopping", extra={"channel": name})
        finally:
            self._closing.discard(name)
            self._tasks.pop(name, None)
            self._wake.pop(name, None)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    def wake(self, channel: str | None = None) -> None:
        for name, event in self._wake.items():
            if channel is None or name == channel:
                event.set()

    async def refresh_pending(self) -> dict[str, int]:
        """Re-read the pending counts; returns them (by channel, removed ones too)."""
        counts = await self.store.pending_counts()
        self.pending = {name: counts.get(name, 0) for name in {*self.channels, *counts}}
        if self.claim is not None:
            # Rows another agent's engine queued wake no lane here: look now, not in 30 s.
            for name, count in counts.items():
                if count:
                    self.wake(name)
        return counts

    async def settle_removed(self, fallbacks_of: Mapping[str, tuple[str, ...]]) -> int:
        """Rows pending for channels not configured any more: no lane will ever take them.

        They are handed to the removed channel's fallbacks that still exist (state
        `skipped`, outcome `rerouted`), else marked `failed` (outcome `dropped`).
        `fallbacks_of` knows the removed channels of this run's reloads; after a
        restart with a channel gone from the file its fallbacks are unknown: dropped.
        Returns how many rows were settled.
        """
        async with self._settle_lock:
            counts = await self.store.pending_counts()
            settled = 0
            for name in sorted(set(counts) - set(self.channels)):
                targets = tuple(f for f in fallbacks_of.get(name, ()) if f in self.channels)
                while rows := await self.store.head(name, 500):
                    await self._settle(name, rows, targets)
                    settled += len(rows)
            return settled

    async def _settle(self, name: str, rows: list[OutboxRow], targets: tuple[str, ...]) -> None:
        now = self.clock()
        reason = f"channel {name} was removed from the config"
        state, outcome = ("skipped", "rerouted") if targets else ("failed", "dropped")
        updates = [
            OutboxUpdate(row, state, row.attempts, now, reason, now, targets) for row in rows
        ]
        await self.store.record(updates)
        self.outcomes[(name, outcome)] += len(rows)
        extra = {"channel": name, "count": len(rows), "fallback": ",".join(targets)}
        if targets:
            log.warning("removed channel: queued notifications handed to fallbacks", extra=extra)
        else:
            log.error("removed channel: queued notifications dropped", extra=extra)
        for target in targets:
            self.wake(target)

    # -- one lane per channel --------------------------------------------------------------
    async def _lane(self, name: str) -> None:
        while name not in self._closing:
            try:
                wait = await self._lane_once(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox lane failed; retrying", extra={"channel": name})
                wait = 1.0
            if name in self._closing:
                return
            event = self._wake[name]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=wait)
            event.clear()

    async def _lane_once(self, name: str) -> float:
        """Send one batch; return how long to sleep unless woken."""
        config = self.configs[name]
        rows = await self.store.head(name, config.concurrency)
        if any(group_of(r) for r in rows) and len(rows) == config.concurrency:
            # A group of one root cause must be seen whole to go out as one message;
            # a plain backlog is read a batch at a time (no 512 payloads per send).
            rows = await self.store.head(name, max(config.concurrency, HEAD_SCAN))
        if not rows:
            return 30.0
        now = self.clock()
        todo = ready(rows, now)
        if config.requires_internet and config.fallback and self.uplink_down():
            # Rows in backoff go at once too; rows held for grouping wait for their group.
            held = {r.id for r in rows if r.attempts == 0 and r.next_attempt_at > now}
            ids = {r.id for r in todo}
            hand = [r for r in rows if r.id in ids or r.id not in held]
            if hand:
                await self.hand_over(name, config, hand, now)
                return 0.0
        if not todo:
            return max(0.05, rows[0].next_attempt_at - now)
        sends = batches(todo)[: config.concurrency]
        if self.claim is not None:
            claimed = await self.claim([r.id for batch in sends for r in batch])
            sends = [batch for batch in sends if all(r.id in claimed for r in batch)]
            if not sends:  # another agent is sending them: look again once it recorded
                return 1.0
        channel = self.channels[name]
        gathered = asyncio.gather(*(self._send_batch(channel, batch) for batch in sends))
        if config.requires_internet and config.fallback:
            # Found down mid-send: abandon the send (it cannot arrive) and hand over now,
            # instead of waiting out the channel's own timeout first.
            while not gathered.done():
                await asyncio.wait([gathered], timeout=UPLINK_POLL)
                if not gathered.done() and self.uplink_down():
                    gathered.cancel()
                    await asyncio.gather(gathered, return_exceptions=True)
                    await self.hand_over(name, config, [r for b in sends for r in b], now)
                    return 0.0
        errors = await gathered
        updates = [
            self._outcome(name, config, row, err)
            for batch, err in zip(sends, errors, strict=True)
            for row in batch
        ]
        await self.store.record(updates)
        for update in updates:
            for target in update.fallbacks:
                self.wake(target)
        return 0.0

    async def _send_batch(self, channel: Channel, batch: list[OutboxRow]) -> DeliveryError | None:
        if len(batch) == 1:
            return await self._send(channel, batch[0])
        payload = merge([r.payload for r in batch], self.language, self.timezone)
        lead = next(r for r in batch if r.dedup_key == payload["dedup_key"])
        log.info(
            "sending a group as one message",
            extra={"channel": lead.channel, "dedup_key": lead.dedup_key, "count": len(batch)},
        )
        return await self._send(channel, replace(lead, payload=payload))

    async def _send(self, channel: Channel, row: OutboxRow) -> DeliveryError | None:
        try:
            await channel.send(row.payload)
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # a channel bug must not stop the lane
            return RetryableError(f"{type(exc).__name__} in channel")
        return None

    def _outcome(
        self, name: str, config: ChannelConfig, row: OutboxRow, error: DeliveryError | None
    ) -> OutboxUpdate:
        now = self.clock()
        attempts = row.attempts + 1
        if error is None:
            self.outcomes[(name, "delivered")] += 1
            log.info("delivered", extra={"channel": name, "dedup_key": row.dedup_key})
            return OutboxUpdate(row, "delivered", attempts, now, done_at=now)
        give_up = not error.retryable or now - row.created_at >= self.backoff.give_up_after
        fallbacks = config.fallback if give_up or attempts >= self.backoff.fallback_after else ()
        extra = {
            "channel": name,
            "dedup_key": row.dedup_key,
            "error": str(error),
            "attempts": attempts,
        }
        if give_up:
            self.outcomes[(name, "failed")] += 1
            log.error("delivery failed for good", extra=extra)
            return OutboxUpdate(row, "failed", attempts, now, str(error), now, fallbacks)
        self.outcomes[(name, "retry")] += 1
        log.warning("delivery failed; will retry", extra=extra)
        next_at = now + self.backoff.delay(attempts)
        return OutboxUpdate(row, "pending", attempts, next_at, str(error), None, fallbacks)

    async def hand_over(
        self,
        name: str,
        config: ChannelConfig,
        rows: list[OutboxRow],
        now: float,
        reason: str = "uplink down",
    ) -> None:
        """Give rows to the channel's fallbacks: while the uplink is down, or while no
        live agent may deliver the channel (alerting/delivery_placement.py)."""
        updates = [
            OutboxUpdate(row, "skipped", row.attempts, now, reason, now, config.fallback)
            for row in rows
        ]
        await self.store.record(updates)
        self.outcomes[(name, "skipped")] += len(rows)
        log.warning(
            f"{reason.split(':', 1)[0]}: handed to fallback channels",
            extra={
                "channel": name,
                "fallback": ",".join(config.fallback),
                "count": len(rows),
                "reason": reason,
            },
        )
        for target in config.fallback:
            self.wake(target)
