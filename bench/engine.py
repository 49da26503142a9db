"""Escalation benchmark: 10,000 checks, 5 % of them flipping state each minute.

Prints engine CPU per result evaluated, store writes per second, and outbox
throughput to a local webhook. Run: .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from agent.config import Config
from agent.state.sqlite import Store
from agent.state.sqlite_alerting import IncidentStore
from alerting.channels.registry import build_channel
from alerting.channels.webhook import WebhookConfig
from alerting.engine import IncidentEngine
from alerting.model import EngineState, Notification, Outcome
from alerting.outbox import Backoff, Outbox

CHECKS = 10_000
PER_SYSTEM = 10
MINUTES = 30
FLIP = 0.05


def build_config(state_dir: str) -> Config:
    checks = [
        {"name": f"c{i}", "type": "tcp", "host": "127.0.0.1", "port": 1, "failures_before_alert": 1}
        for i in range(CHECKS)
    ]
    departments = []
    for d in range(CHECKS // PER_SYSTEM // 20):
        systems = [
            {
                "id": f"s{d}-{s}",
                "rto": "2h",
                "mtpd": "8h",
                "checks": [f"c{(d * 20 + s) * PER_SYSTEM + k}" for k in range(PER_SYSTEM)],
            }
            for s in range(20)
        ]
        departments.append(
            {
                "id": f"d{d}",
                "systems": systems,
                "repeat": "1h",
                "escalation": [
                    {"after": "0m", "notify": ["log"]},
                    {"after": "30m", "notify": ["log"]},
                    {"after": "rto", "notify": ["log"]},
                ],
            }
        )
    return Config.model_validate(
        {
            "agent": {"name": "bench", "state_dir": state_dir},
            "channels": {"log": {"type": "log"}},
            "checks": checks,
            "departments": departments,
        }
    )


def engine_and_store(tmp: str) -> None:
    config = build_config(tmp)
    engine = IncidentEngine(config)
    rng = random.Random(1)
    failing: set[int] = set()
    outcomes: list[Outcome] = []
    results = 0
    now = time.time()
    cpu = time.process_time()
    for minute in range(MINUTES):
        flips = set(rng.sample(range(CHECKS), int(CHECKS * FLIP)))
        failing ^= flips
        batch = Outcome()
        for i in range(CHECKS):
            status = "critical" if i in failing else "ok"
            batch.merge(engine.observe(f"c{i}", status, status, now + minute * 60 + i * 0.006))
            results += 1
        batch.merge(engine.tick(now + minute * 60 + 59))
        outcomes.append(batch)
    cpu = time.process_time() - cpu
    print(
        f"engine: {results} results in {cpu:.2f} s CPU = {cpu / results * 1e6:.1f} µs/result"
        f" ({len(engine.state.incidents)} incidents open at the end)"
    )
    asyncio.run(write_all(tmp, outcomes, engine.state))


async def write_all(tmp: str, outcomes: list[Outcome], state: EngineState) -> None:
    store = Store(tmp)
    await store.open()
    istore = IncidentStore(store)
    rows = sum(
        len(o.checks) + len(o.incidents) + len(o.events) + len(o.notifications) for o in outcomes
    )
    start = time.perf_counter()
    for out in outcomes:  # one transaction per minute of results, as the committer batches
        await istore.persist(out, state)
    took = time.perf_counter() - start
    print(
        f"store: {rows} rows in {len(outcomes)} transactions, {took:.2f} s"
        f" = {rows / took:,.0f} rows/s"
    )
    # Small transactions, as under light load: one per engine outcome with a notification.
    singles = [Outcome(notifications=[n]) for o in outcomes[:3] for n in o.notifications][:500]
    start = time.perf_counter()
    for out in singles:
        await istore.persist(out, state)
    took = time.perf_counter() - start
    print(
        f"store: {len(singles)} single-notification transactions = "
        f"{len(singles) / took:,.0f} commits/s (synchronous=FULL)"
    )
    await store.close()


def receiver_thread() -> tuple[int, list[int]]:
    got: list[int] = []
    ready = threading.Event()
    port: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        got.append(1)
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    ready.wait(5)
    return port[0], got


async def outbox_throughput(tmp: str, count: int = 3000) -> None:
    port, got = receiver_thread()
    store = Store(Path(tmp) / "outbox")
    await store.open()
    istore = IncidentStore(store)
    payload: dict[str, Any] = {"text": "x" * 400}
    notes = [
        Notification(
            f"b/d/s/{i}/0",
            "hook",
            i,
            "firing",
            time.time(),
            dict(payload, dedup_key=f"b/d/s/{i}/0"),
        )
        for i in range(count)
    ]
    await istore.persist(Outcome(notifications=notes), EngineState())
    for concurrency in (1, 8):
        got.clear()
        await store.call(lambda db: db.execute("UPDATE outbox SET state='pending'"))
        config = WebhookConfig(
            type="webhook", url=f"http://127.0.0.1:{port}/hook", concurrency=concurrency
        )
        channel = build_channel("hook", config)
        outbox = Outbox(istore, {"hook": channel}, {"hook": config}, lambda: False, Backoff())
        start = time.perf_counter()
        outbox.start()
        # The receiver appends on its own thread's loop: an asyncio.Event here would not see it.
        while len(got) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        took = time.perf_counter() - start
        await outbox.stop()
        await channel.close()
        print(
            f"outbox: {count} webhook deliveries, concurrency {concurrency}: {took:.2f} s"
            f" = {count / took:,.0f}/s"
        )
    await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine_and_store(tmp)
        asyncio.run(outbox_throughput(tmp))


if __name__ == "__main__":
    main()
