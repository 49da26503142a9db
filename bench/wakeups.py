"""What one wake-up of an agent's process costs: N timers a minute that each start
an empty task, as a plain asyncio timer and as an APScheduler interval job (what
agent/runtime.py uses for its slots), at 600 a minute (100 ms slots of a 60 s
interval) and 120 (its SLOTS_PER_INTERVAL).

    .venv/bin/python bench/wakeups.py              # 20 s per case, about 100 s
    .venv/bin/python bench/wakeups.py --seconds 3  # a quick look

Each case runs in its own interpreter, one after another; CPU is the process's
own (user + system) over the window, after a settling time (--settle, 3 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CASE = r"""
import asyncio, sys, time
kind, n, seconds, settle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
INTERVAL = 60.0

async def job() -> None:
    pass

async def main() -> None:
    loop = asyncio.get_running_loop()
    if kind == "asyncio":
        def fire(due: float) -> None:
            loop.create_task(job())
            loop.call_at(due + INTERVAL, fire, due + INTERVAL)
        start = loop.time()
        for i in range(n):
            loop.call_at(start + 0.5 + i * INTERVAL / n, fire, start + 0.5 + i * INTERVAL / n)
    else:
        from datetime import UTC, datetime
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        now = time.time()
        for i in range(n):
            first = datetime.fromtimestamp(now + 0.5 + i * INTERVAL / n, UTC)
            trigger = IntervalTrigger(seconds=INTERVAL, start_date=first, timezone=UTC)
            scheduler.add_job(job, trigger, id=str(i))
        scheduler.start()
    await asyncio.sleep(settle)
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    print((time.process_time() - cpu) / seconds)

asyncio.run(main())
"""


def measure(kind: str, per_minute: int, seconds: float, settle: float) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CASE, kind, str(per_minute), str(seconds), str(settle)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="window per case (20)")
    parser.add_argument("--settle", type=float, default=3.0, help="before each window (3)")
    args = parser.parse_args()
    print(f"{'timers':<28} {'a minute':>8} {'% of a core':>12} {'per wake-up':>12}")
    for kind, label in (("asyncio", "asyncio call_at + task"), ("apscheduler", "APScheduler job")):
        for per_minute in (600, 120):
            share = measure(kind, per_minute, args.seconds, args.settle)
            each = share / (per_minute / 60.0) * 1e6
            print(f"{label:<28} {per_minute:>8} {share * 100:>11.2f}% {each:>9.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
