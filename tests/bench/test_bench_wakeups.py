"""bench/wakeups.py in a quick mode, so the script behind the slot width in
agent/runtime.py cannot rot: four cases, each with its cost per wake-up."""

from __future__ import annotations

import re

from tests.bench.bench_run import run_bench


def test_the_wakeup_bench_measures_four_cases() -> None:
    run = run_bench("wakeups.py", "--seconds", "0.5", "--settle", "0.2")
    rows = re.findall(
        r"^(asyncio call_at \+ task|APScheduler job)\s+(\d+)\s+[\d.]+%\s+(\d+) us$",
        run.stdout,
        re.M,
    )
    assert [(kind, int(n)) for kind, n, _ in rows] == [
        ("asyncio call_at + task", 600),
        ("asyncio call_at + task", 120),
        ("APScheduler job", 600),
        ("APScheduler job", 120),
    ]
