"""Runner and runtime: timeouts, exceptions, severity, dependencies, scheduling."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from pathlib import Path

import pytest

from agent.configload import load_config_text
from agent.results import ResultBook
from agent.runner import Runner
from agent.runtime import SLOTS_PER_INTERVAL, Runtime, dependency_order, slot_width, start_offset
from checks.base import CheckConfig, CheckContext, CheckResult, Status, critical, ok
from tests.helpers import async_wait_until


class ScriptedCheck:
    """A probe whose behaviour the test chooses: this tests the runner, not a probe."""

    def __init__(self, name: str, behaviour: str, **kw: object) -> None:
        self.config = CheckConfig.model_validate({"name": name, "type": "scripted", **kw})
        self.behaviour = behaviour
        self.active = 0
        self.peak = 0

    async def run(self) -> CheckResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.behaviour == "raise":
                raise RuntimeError("socket exploded")
            if self.behaviour == "hang":
                await asyncio.Event().wait()
            if self.behaviour == "slow":
                await asyncio.sleep(0.05)
            return critical("down") if self.behaviour == "fail" else ok("fine")
        finally:
            self.active -= 1


async def test_exception_becomes_unknown_with_text() -> None:
    result = await Runner(ResultBook(), 1).run(ScriptedCheck("a", "raise"))
    assert result.status is Status.UNKNOWN
    assert result.message == "check raised RuntimeError: socket exploded"


async def test_timeout_becomes_critical_on_time() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await Runner(ResultBook(), 1).run(ScriptedCheck("a", "hang", timeout=0.2))
    assert result.status is Status.CRITICAL
    assert result.message == "timed out after 200ms"
    assert 0.2 <= loop.time() - start < 0.3
    assert 0.2 <= result.duration_seconds < 0.3


async def test_severity_warning_downgrades_failures() -> None:
    result = await Runner(ResultBook(), 1).run(ScriptedCheck("a", "fail", severity="warning"))
    assert result.status is Status.WARNING


async def test_failing_dependent_is_unreachable_and_passing_one_ok() -> None:
    book = ResultBook()
    switch = ScriptedCheck("switch", "fail")
    app = ScriptedCheck("app", "fail", depends_on=["switch"])
    healthy = ScriptedCheck("healthy", "ok", depends_on=["switch"])
    book.configure((switch.config, app.config, healthy.config))
    runner = Runner(book, 4)
    book.record("switch", await runner.run(switch))
    app_result = await runner.run(app)
    assert app_result.status is Status.UNREACHABLE
    assert app_result.message == "unreachable: depends on switch which is critical; down"
    assert (await runner.run(healthy)).status is Status.OK
    book.record("switch", ok("back"))
    assert (await runner.run(app)).status is Status.CRITICAL


async def test_max_concurrency_is_respected() -> None:
    check = ScriptedCheck("a", "slow")
    runner = Runner(ResultBook(), 3)
    await asyncio.gather(*(runner.run(check) for _ in range(12)))
    assert check.peak == 3


def test_the_book_counts_runs_by_status() -> None:
    # Failures in a row are the engine's to count (tests/agent/test_failure_counter.py).
    book = ResultBook()
    config = CheckConfig.model_validate({"name": "a", "type": "x", "failures_before_alert": 2})
    book.configure((config,))
    state = book.states["a"]
    book.record("a", critical("1"))
    book.record("a", CheckResult(Status.UNKNOWN, "2"))
    book.record("a", CheckResult(Status.UNREACHABLE, "3"))
    book.record("a", ok("4"))
    book.record("a", CheckResult(Status.WARNING, "5"))
    assert state.result is not None and state.result.message == "5"
    assert state.runs == {
        Status.CRITICAL: 1,
        Status.UNKNOWN: 1,
        Status.UNREACHABLE: 1,
        Status.OK: 1,
        Status.WARNING: 1,
    }


def test_start_offsets_spread_over_the_interval() -> None:
    buckets = Counter(int(start_offset(f"check-{i}", 60.0) // 6) for i in range(10_000))
    assert set(buckets) == set(range(10))
    assert max(buckets.values()) < 1_150  # ~1,000 each: no stampede
    assert start_offset("same", 60.0) == start_offset("same", 60.0)


def test_dependency_order_levels() -> None:
    configs = [
        CheckConfig.model_validate({"name": n, "type": "x", "depends_on": d})
        for n, d in [("app", ["db", "switch"]), ("db", ["switch"]), ("switch", []), ("mem", [])]
    ]
    assert dependency_order(configs) == [["mem", "switch"], ["db"], ["app"]]


async def test_an_interval_has_a_bounded_number_of_scheduler_jobs(tmp_path: Path) -> None:
    """Each job firing wakes the process (~0.5 ms of CPU): 3,000 checks at 60 s share
    at most SLOTS_PER_INTERVAL jobs, not 600 of 100 ms, and each check starts within
    one slot before its own offset; short intervals keep 100 ms slots."""
    lines = [f"  - {{name: c{i}, type: memory, interval: 60s}}" for i in range(3000)]
    lines += [f"  - {{name: f{i}, type: memory, interval: 1s}}" for i in range(50)]
    config = load_config_text("checks:\n" + "\n".join(lines) + "\n", "t.yaml", env={})
    runtime = Runtime(ResultBook(), CheckContext(tmp_path, "t"), 10)
    runtime.apply(config.checks)
    try:
        jobs = runtime._scheduler.get_jobs()
        minute = [j for j in jobs if j.id.startswith("every-60.0s/")]
        second = [j for j in jobs if j.id.startswith("every-1.0s/")]
        assert len(minute) == SLOTS_PER_INTERVAL and 0 < len(second) <= 10
        assert slot_width(60.0) == 0.5 and slot_width(1.0) == 0.1
        for name in ("c0", "c1234", "c2999"):
            offset = start_offset(name, 60.0)
            slot = int(runtime._slot_of[name].rsplit("-", 1)[1])
            assert slot * 0.5 <= offset < (slot + 1) * 0.5
    finally:
        await runtime.stop(grace=1)


async def test_runtime_schedules_and_reload_keeps_history(tmp_path: Path) -> None:
    text = "checks:\n  - {name: mem, type: memory, interval: 100ms}\n"
    config = load_config_text(text, "t.yaml", env={})
    book = ResultBook()
    lags: list[float] = []
    runtime = Runtime(book, CheckContext(tmp_path, "t"), 10, lags.append)
    runtime.apply(config.checks)
    runtime.start()
    try:
        await async_wait_until(lambda: sum(book.states["mem"].runs.values()) >= 3)
        assert all(0 <= lag < 0.05 for lag in lags)
        more = load_config_text(text + "  - {name: load, type: load, interval: 100ms}\n", "t", {})
        runs_before = sum(book.states["mem"].runs.values())
        runtime.apply(more.checks)
        assert sum(book.states["mem"].runs.values()) >= runs_before  # history kept
        await async_wait_until(lambda: book.states["load"].result is not None)
        runtime.apply(load_config_text("checks: []\n", "t", {}).checks)
        assert book.states == {}
        assert runtime._scheduler.get_jobs() == []
    finally:
        await runtime.stop(grace=1)


@pytest.mark.parametrize("names", [None, ["mem"]])
async def test_run_once_runs_dependencies_first(tmp_path: Path, names: list[str] | None) -> None:
    text = (
        "checks:\n  - {name: up, type: link, targets: ['tcp://127.0.0.1:1']}\n"
        "  - {name: mem, type: memory, depends_on: [up]}\n"
    )
    config = load_config_text(text, "t.yaml", env={})
    book = ResultBook()
    runtime = Runtime(book, CheckContext(tmp_path, "t"), 10)
    runtime.apply(config.checks)
    await runtime.run_once(names)
    assert book.states["mem"].result is not None
    assert book.states["up"].result is not None  # a dependency runs first, even if not named
    assert book.states["mem"].result.status is Status.OK  # a passing dependent stays ok


async def test_removed_and_stopped_checks_release_their_sessions(tmp_path: Path) -> None:
    from aiohttp import web

    from checks.http import HttpCheck

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    text = (
        "checks:\n"
        f"  - {{name: a, type: http, url: 'http://127.0.0.1:{port}/', keepalive: true}}\n"
        f"  - {{name: b, type: http, url: 'http://127.0.0.1:{port}/', keepalive: true}}\n"
    )
    config = load_config_text(text, "t.yaml", env={})
    runtime = Runtime(ResultBook(), CheckContext(tmp_path, "t"), 10)
    try:
        runtime.apply(config.checks)
        await runtime.run_once()
        a, b = runtime.checks["a"], runtime.checks["b"]
        assert isinstance(a, HttpCheck) and isinstance(b, HttpCheck)
        session_a, session_b = a._session, b._session
        assert session_a is not None and session_b is not None and not session_a.closed
        runtime.apply(config.checks[1:])  # a reload drops check a
        await async_wait_until(lambda: session_a.closed)
        assert not session_b.closed
        await runtime.stop(grace=1)
        assert session_b.closed
    finally:
        await runner.cleanup()


async def test_health_follows_the_scheduler(tmp_path: Path) -> None:
    config = load_config_text("checks: [{name: m, type: memory, interval: 1s}]\n", "t", {})
    runtime = Runtime(ResultBook(), CheckContext(tmp_path, "t"), 10)
    runtime.apply(config.checks)
    assert not runtime.healthy  # not started
    runtime.start()
    assert runtime.healthy
    runtime.last_tick -= 8.0  # nothing fired for 8 s with a 1 s interval: stuck
    assert not runtime.healthy
    await runtime.stop(grace=1)
    assert not runtime.healthy


async def test_first_results_come_soon_after_start_not_an_interval_later(tmp_path: Path) -> None:
    text = "".join(f"  - {{name: m{i}, type: memory, interval: 1h}}\n" for i in range(20))
    config = load_config_text("checks:\n" + text, "t.yaml", env={})
    book = ResultBook()
    lags: list[float] = []
    runtime = Runtime(book, CheckContext(tmp_path, "t"), 10, lags.append)
    runtime.apply(config.checks)
    loop = asyncio.get_running_loop()
    started = loop.time()
    runtime.start()
    try:
        # 20 checks at 200/s spread over at most 1 s, though their interval is an hour.
        await async_wait_until(lambda: all(s.result is not None for s in book.states.values()), 3.0)
        assert loop.time() - started < 1.5
        assert len(lags) == 20 and max(lags) < 0.05
    finally:
        await runtime.stop(grace=1)


async def test_first_run_stands_in_for_the_first_slot(tmp_path: Path) -> None:
    text = "".join(f"  - {{name: m{i}, type: memory, interval: 400ms}}\n" for i in range(20))
    config = load_config_text("checks:\n" + text, "t.yaml", env={})
    book = ResultBook()
    finished: dict[str, list[float]] = {}
    book.listeners.append(
        lambda s: finished.setdefault(s.config.name, []).append(asyncio.get_running_loop().time())
    )
    runtime = Runtime(book, CheckContext(tmp_path, "t"), 50)
    runtime.apply(config.checks)
    runtime.start()
    try:
        await async_wait_until(
            lambda: all(len(finished.get(f"m{i}", [])) >= 3 for i in range(20)), 5.0
        )
    finally:
        await runtime.stop(grace=1)
    for name, times in finished.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Never two runs within half an interval (two failures would count too fast).
        assert min(gaps) >= 0.2 - 0.02, (name, gaps)
