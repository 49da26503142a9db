"""disk, memory, load and process against this machine's real readings.

Thresholds are set relative to what psutil reads right now (half the current
usage, halfway to 100 % ...), so each test knows the verdict the check must
give: a check that swapped warn and critical, compared the wrong way or graded
the wrong reading fails here.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from checks.base import CheckConfig, CheckContext, CheckResult, Status
from checks.disk import DiskConfig
from checks.load import LoadConfig
from checks.memory import MemoryConfig
from checks.process import ProcessConfig
from checks.registry import build
from checks.thresholds import grade


async def run(model: type[CheckConfig], state_dir: Path, **keys: Any) -> CheckResult:
    config = model.model_validate({"name": "local", **keys})
    return await build(config, CheckContext(state_dir=state_dir, agent_name="test")).run()


def below(value: float, share: float) -> float:
    """A threshold the current reading is at or above."""
    return value * share


def above(value: float, share: float, top: float = 100.0) -> float:
    """A threshold between the current reading and `top`."""
    return value + (top - value) * share


# -- grading --------------------------------------------------------------------------

GRADES = [
    # (value, warn, crit, status): higher is worse, each bound inclusive
    (50.0, 80.0, 90.0, Status.OK),
    (79.99, 80.0, 90.0, Status.OK),
    (80.0, 80.0, 90.0, Status.WARNING),
    (89.99, 80.0, 90.0, Status.WARNING),
    (90.0, 80.0, 90.0, Status.CRITICAL),
    (100.0, 80.0, 90.0, Status.CRITICAL),
    (0.0, 0.0, 90.0, Status.WARNING),
    (-1.0, 0.0, 90.0, Status.OK),
    (50.0, None, None, Status.OK),
    (1e9, None, None, Status.OK),
    (85.0, 80.0, None, Status.WARNING),
    (85.0, None, 90.0, Status.OK),
    (95.0, None, 90.0, Status.CRITICAL),
    # An inverted pair (warn above crit): critical from crit up, warning never.
    (85.0, 95.0, 90.0, Status.OK),
    (92.0, 95.0, 90.0, Status.CRITICAL),
    (96.0, 95.0, 90.0, Status.CRITICAL),
    # Readings far below the thresholds: a comparison turned around would grade these.
    (0.0, 80.0, 90.0, Status.OK),
    (-50.0, -10.0, -5.0, Status.OK),
    (-7.0, -10.0, -5.0, Status.WARNING),
    (-5.0, -10.0, -5.0, Status.CRITICAL),
]


@pytest.mark.parametrize(("value", "warn", "crit", "status"), GRADES)
def test_grade(value: float, warn: float | None, crit: float | None, status: Status) -> None:
    assert grade(value, warn, crit) is status


# -- disk -----------------------------------------------------------------------------


def used_percent(path: Path | str) -> float:
    return float(psutil.disk_usage(str(path)).percent)


async def test_disk_below_both_thresholds_is_ok(tmp_path: Path) -> None:
    used = used_percent(tmp_path)
    r = await run(
        DiskConfig,
        tmp_path,
        type="disk",
        warn_percent=above(used, 0.4),
        critical_percent=above(used, 0.8),
    )
    assert r.status is Status.OK, r.message
    assert r.message.startswith(f"{tmp_path} ")  # the state_dir by default
    assert abs(r.facts["used_percent"] - used) < 1.0
    assert r.facts["total_bytes"] == float(psutil.disk_usage(str(tmp_path)).total)


async def test_disk_between_warn_and_critical_is_warning(tmp_path: Path) -> None:
    used = used_percent(tmp_path)
    assert used > 0, "an empty filesystem cannot be graded against a threshold below it"
    r = await run(
        DiskConfig,
        tmp_path,
        type="disk",
        path=str(tmp_path),
        warn_percent=below(used, 0.5),
        critical_percent=above(used, 0.5),
    )
    assert r.status is Status.WARNING, r.message


async def test_disk_above_critical_is_critical(tmp_path: Path) -> None:
    used = used_percent(tmp_path)
    r = await run(
        DiskConfig,
        tmp_path,
        type="disk",
        warn_percent=below(used, 0.25),
        critical_percent=below(used, 0.5),
    )
    assert r.status is Status.CRITICAL, r.message
    assert f"{r.facts['used_percent']:.1f}% used" in r.message


async def test_disk_missing_path_is_critical_with_the_reason(tmp_path: Path) -> None:
    r = await run(DiskConfig, tmp_path, type="disk", path=str(tmp_path / "nope"))
    assert r.status is Status.CRITICAL
    assert r.message.startswith(f"{tmp_path / 'nope'}: ")


async def test_disk_writable(tmp_path: Path) -> None:
    fine = await run(DiskConfig, tmp_path, type="disk", writable=True, warn_percent=100)
    assert fine.status is Status.OK, fine.message
    assert await asyncio.to_thread(os.listdir, tmp_path) == [], "the probe file is removed"
    # /proc has a size and takes no files, even from root.
    proc = await run(DiskConfig, tmp_path, type="disk", path="/proc", writable=True)
    assert proc.status is Status.CRITICAL
    assert proc.message.startswith("/proc is not writable: ")


# -- memory ---------------------------------------------------------------------------


async def test_memory_grades_the_used_percent(tmp_path: Path) -> None:
    used = float(psutil.virtual_memory().percent)
    assert used > 0
    ok = await run(
        MemoryConfig,
        tmp_path,
        type="memory",
        warn_percent=above(used, 0.5),
        critical_percent=above(used, 0.75),
    )
    assert ok.status is Status.OK, ok.message
    warning = await run(
        MemoryConfig,
        tmp_path,
        type="memory",
        warn_percent=below(used, 0.5),
        critical_percent=above(used, 0.5),
    )
    assert warning.status is Status.WARNING, warning.message
    crit = await run(
        MemoryConfig,
        tmp_path,
        type="memory",
        warn_percent=below(used, 0.25),
        critical_percent=below(used, 0.5),
    )
    assert crit.status is Status.CRITICAL, crit.message
    assert abs(crit.facts["used_percent"] - used) < 10, "memory use moves, but not that much"
    assert crit.facts["total_bytes"] == float(psutil.virtual_memory().total)


async def test_swap_is_graded_on_its_own_thresholds(tmp_path: Path) -> None:
    swap = float(psutil.swap_memory().percent)
    quiet_memory = {"type": "memory", "warn_percent": 100, "critical_percent": 100}
    r = await run(
        MemoryConfig,
        tmp_path,
        **quiet_memory,
        swap_warn_percent=above(swap, 0.5),
        swap_critical_percent=above(swap, 0.75),
    )
    assert r.status is Status.OK, r.message
    assert r.facts["swap_used_percent"] == pytest.approx(swap, abs=5)
    if swap == 0:
        return  # no swap in use here: nothing lies below the reading
    r = await run(
        MemoryConfig,
        tmp_path,
        **quiet_memory,
        swap_warn_percent=below(swap, 0.5),
        swap_critical_percent=above(swap, 0.5),
    )
    assert r.status is Status.WARNING, r.message


# -- load -----------------------------------------------------------------------------


def load5(per_cpu: bool) -> float:
    value = os.getloadavg()[1]
    return value / (psutil.cpu_count() or 1) if per_cpu else value


@pytest.mark.parametrize("per_cpu", [True, False])
async def test_load5_is_graded_per_cpu_or_as_is(tmp_path: Path, per_cpu: bool) -> None:
    now = load5(per_cpu)
    # The five-minute average barely moves during a test; the margins cover the rest.
    ok = await run(
        LoadConfig,
        tmp_path,
        type="load",
        per_cpu=per_cpu,
        warn_load5=now * 2 + 5,
        critical_load5=now * 3 + 10,
    )
    assert ok.status is Status.OK, ok.message
    assert ok.facts["load5"] == pytest.approx(now, abs=0.5)
    assert ok.facts["cpus"] == float(psutil.cpu_count() or 1)
    assert ("per CPU" in ok.message) is per_cpu
    warning = await run(
        LoadConfig,
        tmp_path,
        type="load",
        per_cpu=per_cpu,
        warn_load5=below(now, 0.5),
        critical_load5=now * 2 + 5,
    )
    assert warning.status is Status.WARNING, warning.message
    crit = await run(
        LoadConfig,
        tmp_path,
        type="load",
        per_cpu=per_cpu,
        warn_load5=below(now, 0.25),
        critical_load5=below(now, 0.5),
    )
    assert crit.status is Status.CRITICAL, crit.message


async def test_each_load_average_has_its_own_thresholds(tmp_path: Path) -> None:
    """Thresholds on load15 alone grade it; with no thresholds at all nothing is breached."""
    fifteen = os.getloadavg()[2]
    r = await run(
        LoadConfig,
        tmp_path,
        type="load",
        per_cpu=False,
        warn_load5=None,
        critical_load5=None,
        warn_load15=below(fifteen, 0.5),
    )
    assert r.status is Status.WARNING, r.message
    r = await run(LoadConfig, tmp_path, type="load", warn_load5=None, critical_load5=None)
    assert r.status is Status.OK, "no thresholds: nothing to breach"


# -- process --------------------------------------------------------------------------


async def test_process_finds_this_test_process(tmp_path: Path) -> None:
    me = psutil.Process()
    cmdline = "^" + " ".join(map(re.escape, me.cmdline())) + "$"
    r = await run(ProcessConfig, tmp_path, type="process", cmdline_regex=cmdline)
    assert r.status is Status.OK, r.message
    assert r.facts["count"] >= 1
    named = await run(
        ProcessConfig,
        tmp_path,
        type="process",
        name_regex=f"^{re.escape(me.name())}$",
        cmdline_regex=cmdline,
        min_count=1,
    )
    assert named.status is Status.OK, named.message


@pytest.fixture
def sleepers() -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """Three `sleep` processes with a duration nobody else uses: exactly three match."""
    duration = f"{random.randint(600, 900)}.{random.randint(10**5, 10**6 - 1)}"
    procs = [subprocess.Popen(["sleep", duration]) for _ in range(3)]
    try:
        yield rf"^sleep {duration.replace('.', '[.]')}$", procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


async def test_process_counts_against_min_and_max(
    tmp_path: Path, sleepers: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    pattern, procs = sleepers

    async def check(**keys: Any) -> CheckResult:
        return await run(ProcessConfig, tmp_path, type="process", cmdline_regex=pattern, **keys)

    exact = await check(min_count=3, max_count=3)
    assert exact.status is Status.OK, exact.message
    assert exact.facts["count"] == 3
    assert exact.message == f"3 processes match {pattern!r}"
    short = await check(min_count=4)
    assert short.status is Status.CRITICAL
    assert short.message == f"3 processes match {pattern!r}, need 4"
    over = await check(max_count=2)
    assert over.status is Status.CRITICAL
    assert over.message == f"3 processes match {pattern!r}, at most 2"
    for p in procs:
        p.kill()
        p.wait()
    gone = await check()
    assert gone.status is Status.CRITICAL
    assert gone.facts["count"] == 0
    assert (await check(min_count=0)).status is Status.OK, "min_count 0: absence is fine"


def test_process_needs_a_matcher() -> None:
    with pytest.raises(ValueError, match="set name_regex or cmdline_regex"):
        ProcessConfig.model_validate({"name": "p", "type": "process"})
