"""core/throttle.py: an on-demand read, at most once per `every`, shared by callers."""

from __future__ import annotations

import asyncio

import pytest

from core.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_runs_at_most_once_per_period_and_callers_share_a_run() -> None:
    clock, runs = Clock(), []
    throttle = Throttle(2.0, clock)

    async def read() -> None:
        runs.append(clock.now)
        await asyncio.sleep(0)

    await asyncio.gather(*(throttle.run(read) for _ in range(10)))
    assert runs == [50.0]
    clock.now += 1.9
    await throttle.run(read)
    assert runs == [50.0]
    clock.now += 0.1
    await throttle.run(read)
    assert runs == [50.0, 52.0]


async def test_a_failing_read_counts_as_run() -> None:
    clock, calls = Clock(), []
    throttle = Throttle(2.0, clock)

    async def fail() -> None:
        calls.append(clock.now)
        raise RuntimeError("store gone")

    with pytest.raises(RuntimeError):
        await throttle.run(fail)
    await throttle.run(fail)  # within the period: not tried again
    assert calls == [50.0]
