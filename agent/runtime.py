"""Schedules every check on APScheduler's AsyncIOScheduler and records the results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.results import DEPENDENCY_DOWN, FAILING, ResultBook
from agent.runner import Runner
from checks import registry
from checks.base import Check, CheckConfig, CheckContext, CheckResult

log = logging.getLogger("vaktpost.runtime")
# Checks whose start offsets fall into the same slot of their interval share one
# scheduler job: an interval has at most SLOTS_PER_INTERVAL slots, none shorter than
# MIN_SLOT. Each firing wakes the process, and a wake-up with APScheduler's trigger
# maths, job store and events costs ~0.5 ms of CPU here: one job per check was 4-6 %
# of a core at 10,000 checks on 60 s; 100 ms slots (600 a minute) still cost an
# agent ~0.6 % of a core whether it runs 3,000 checks or 9,000, which in a fleet of
# three was a fifth of its CPU. A check starts at most one slot (0.5 s at 60 s)
# before its exact offset.
MIN_SLOT = 0.1
SLOTS_PER_INTERVAL = 120
# First runs after start, in checks per second (see Runtime._first_runs).
FIRST_RUN_RATE = 200.0


def start_offset(name: str, interval: float) -> float:
    """Where in its interval a check fires: spread by name, stable across reloads."""
    return (zlib.crc32(name.encode()) % 1_000_003) / 1_000_003 * interval


def slot_width(interval: float) -> float:
    """How much of an interval one scheduler job covers (see SLOTS_PER_INTERVAL)."""
    return max(MIN_SLOT, interval / SLOTS_PER_INTERVAL)


class Runtime:
    def __init__(
        self,
        book: ResultBook,
        ctx: CheckContext,
        max_concurrency: int,
        observe_lag: Callable[[float], None] = lambda _lag: None,
        observe_wait: Callable[[float], None] = lambda _wait: None,
    ) -> None:
        self.book = book
        self.ctx = ctx
        self.runner = Runner(book, max_concurrency, observe_wait)
        self.observe_lag = observe_lag
        self.checks: dict[str, Check] = {}
        self._anchors: dict[str, float] = {}  # slot job id -> first fire time (unix)
        self._slots: dict[str, set[str]] = {}  # slot job id -> its checks
        self._slot_of: dict[str, str] = {}  # check -> slot job id
        self._running: set[str] = set()  # checks with a probe in flight: one at a time
        self._done: dict[str, asyncio.Future[None]] = {}  # in flight: resolved when recorded
        self._inflight: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._started: dict[str, float] = {}  # check -> when its last probe started
        self._origin = time.time()
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.last_tick = time.monotonic()

    def apply(self, checks: tuple[CheckConfig, ...], local: Collection[str] | None = None) -> None:
        """(Re)build probes and jobs. Unchanged checks keep their phase and history.

        In a fleet the book knows every check and `local` names those this agent
        runs (the others' results come from the store); None: all of them.
        """
        self.book.configure(checks)
        wanted = {c.name: c for c in checks if local is None or c.name in local}
        for name in list(self.checks):
            if name not in wanted or self.checks[name].config != wanted[name]:
                self._remove(name)
        now = time.time()
        added = []
        for name, config in wanted.items():
            if name in self.checks:
                continue
            self.checks[name] = registry.build(config, self.ctx)
            self._join_slot(name, config.interval, now)
            added.append(name)
        if added and self._scheduler.running:
            # A check that moved here from a lapsed agent of the fleet (or a reload's
            # new one) runs soon, not at its slot up to an interval later.
            self._first_runs(added)

    def _join_slot(self, name: str, interval: float, now: float) -> None:
        width = slot_width(interval)
        slot = int(start_offset(name, interval) // width)
        job_id = f"every-{interval!r}s/slot-{slot}"
        self._slot_of[name] = job_id
        members = self._slots.get(job_id)
        if members is not None:
            members.add(name)
            return
        self._slots[job_id] = {name}
        # Phases count from this runtime's start, not from the epoch: a check's first
        # run after start (at a share of a shorter spread, see _first_runs) then
        # always comes before its slot's first firing, which it stands in for.
        anchor = self._origin + (now - self._origin) // interval * interval + slot * width
        if anchor <= now:
            anchor += interval
        self._anchors[job_id] = anchor
        self._scheduler.add_job(
            self._fire_slot,
            IntervalTrigger(
                seconds=interval, start_date=datetime.fromtimestamp(anchor, UTC), timezone=UTC
            ),
            args=[job_id, interval],
            id=job_id,
            replace_existing=True,
        )

    def _remove(self, name: str) -> None:
        check = self.checks.pop(name)
        self._started.pop(name, None)
        # A probe in flight may still open what close would release (a session
        # created after close ran leaks): close once that probe is recorded.
        task = asyncio.get_running_loop().create_task(close_check(check, self._done.get(name)))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        job_id = self._slot_of.pop(name)
        members = self._slots[job_id]
        members.discard(name)
        if not members:
            del self._slots[job_id], self._anchors[job_id]
            if self._scheduler.get_job(job_id):
                self._scheduler.remove_job(job_id)

    def start(self) -> None:
        self._scheduler.start()
        self.last_tick = time.monotonic()
        self._first_runs(list(self.checks))

    def _first_runs(self, names: list[str]) -> None:
        """A first result for every check soon after start, not up to an interval later.

        Spread at FIRST_RUN_RATE checks a second (never beyond a check's interval),
        so a large config does not start with a stampede either.
        """
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if t.when() > loop.time()]
        spread = max(1.0, len(names) / FIRST_RUN_RATE)
        for name in names:
            check = self.checks[name]
            due = loop.time() + start_offset(name, min(spread, check.config.interval))
            self._timers.append(loop.call_at(due, self._spawn_first, name, due))

    def _spawn_first(self, name: str, due: float) -> None:
        if name in self._started:  # its slot fired first (large configs): nothing to add
            return
        self._spawn(name, asyncio.get_running_loop().time() - due)

    @property
    def healthy(self) -> bool:
        """The scheduler runs and some check fired within twice the shortest interval."""
        if not self._scheduler.running:
            return False
        if not self.checks:
            return True
        shortest = min(c.config.interval for c in self.checks.values())
        return time.monotonic() - self.last_tick < 2 * shortest + 5.0

    async def stop(self, grace: float) -> None:
        """Stop scheduling; let in-flight probes finish within `grace`, then cancel them."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for timer in self._timers:
            timer.cancel()
        pending = set(self._inflight)
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        await self.close()

    async def close(self) -> None:
        """Release what probes hold between runs (e.g. keep-alive HTTP sessions)."""
        await asyncio.gather(*(close_check(c) for c in self.checks.values()), *self._closing)

    async def _fire_slot(self, job_id: str, interval: float) -> None:
        """Start every check of a slot, each as its own task; skip one still running."""
        anchor = self._anchors.get(job_id)
        if anchor is None:
            return
        lag = (time.time() - anchor) % interval
        lag = lag if lag < interval / 2 else 0.0
        self.last_tick = now = time.monotonic()
        for name in sorted(self._slots.get(job_id, ())):
            # A first run just after start stands in for the slot's first firing:
            # two runs in one interval would count as two failures in a row.
            if now - self._started.get(name, -interval) < interval / 2:
                continue
            self._spawn(name, lag)

    def run_now(self, name: str) -> None:
        """Probe a check at once because its input changed (a push ping, an alert);
        when a probe is in flight, right after it, since that one may have read the old input."""
        done = self._done.get(name)
        if done is None:
            self._spawn(name, None)
        else:
            done.add_done_callback(lambda _done: self._spawn(name, None))

    def _spawn(self, name: str, lag: float | None) -> None:
        """Start one probe as its own task; skip a check whose last probe still runs."""
        check = self.checks.get(name)
        if check is None or name in self._running:
            return  # like max_instances=1: the next run waits for the slow one
        if lag is not None:
            self.observe_lag(lag)
        self._started[name] = time.monotonic()
        self._running.add(name)
        self._done[name] = asyncio.get_running_loop().create_future()
        task = asyncio.get_running_loop().create_task(self._run(name, check))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _run(self, name: str, check: Check) -> None:
        try:
            started = time.time()
            result = await self.runner.run(check)  # never raises
            if result.status in FAILING and check.config.depends_on:
                result = await self._judge_fresh(check, result, started)
            self.book.record(name, result)
        except Exception:  # a listener's bug must not silence the check
            log.exception("recording a result failed", extra={"check": name})
        finally:
            self._running.discard(name)
            done = self._done.pop(name, None)
            if done is not None and not done.done():
                done.set_result(None)

    async def _judge_fresh(self, check: Check, result: CheckResult, started: float) -> CheckResult:
        """Root cause in every timing: judge a failing dependent on a fresh verdict.

        A dependency whose latest result is missing (start-up), or says up but is
        older than this probe (the second the uplink dies), is probed at once; a
        probe already in flight is joined, so 200 dependents cost one probe of the
        uplink. Its result is recorded before the dependent's, so the engine sees
        the root cause first. Chains resolve the same way, one level at a time.
        """
        stale = []
        for dep in check.config.depends_on:
            state = self.book.states.get(dep)
            if state is None or dep not in self.checks:
                continue
            last = state.result
            if last is None or (last.status not in DEPENDENCY_DOWN and last.finished_at < started):
                stale.append(dep)
        if not stale:
            return result
        await asyncio.gather(*(self._probe_now(dep) for dep in stale))
        return self.runner.judge(check, result)

    async def _probe_now(self, name: str) -> None:
        if name not in self._done:
            self._spawn(name, None)
        done = self._done.get(name)
        if done is not None:
            await asyncio.shield(done)

    async def run_once(self, names: list[str] | None = None) -> None:
        """Run the selected (default: all) checks once, after the checks they depend on."""
        order = dependency_order([c.config for c in self.checks.values()])
        selected = self._with_dependencies(names) if names else None
        for level in order:
            batch = [n for n in level if selected is None or n in selected]
            results = await asyncio.gather(*(self.runner.run(self.checks[n]) for n in batch))
            for n, r in zip(batch, results, strict=True):
                self.book.record(n, r)

    def _with_dependencies(self, names: list[str]) -> set[str]:
        wanted, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in wanted or name not in self.checks:
                continue
            wanted.add(name)
            todo.extend(self.checks[name].config.depends_on)
        return wanted


async def close_check(check: Check, after: asyncio.Future[None] | None = None) -> None:
    """Checks may hold resources between runs; those that do have `aclose`."""
    aclose = getattr(check, "aclose", None)
    if aclose is None:
        return
    if after is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(after)
    try:
        await aclose()
    except Exception as exc:  # closing must never stop a reload or a shutdown
        log.warning(
            "closing a check failed", extra={"check": check.config.name, "error": repr(exc)}
        )


def dependency_order(configs: list[CheckConfig]) -> list[list[str]]:
    """Checks in levels: each level depends only on earlier ones (config forbids cycles)."""
    remaining = {c.name: set(c.depends_on) for c in configs}
    levels: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        level = sorted(n for n, deps in remaining.items() if deps <= done)
        if not level:  # unknown deps or a cycle slipped through: run the rest together
            level = sorted(remaining)
        for n in level:
            del remaining[n]
        done.update(level)
        levels.append(level)
    return levels
