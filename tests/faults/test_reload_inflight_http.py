"""Reloads that replace http checks with probes in flight (issue 9, seen 10).

A probe still waiting for a slot when a reload replaced its check opened its
session after the check had been closed, and the session leaked ("Unclosed client
session"). The runtime now closes a replaced check after its in-flight probe.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.configload import load_config_text
from agent.results import ResultBook
from agent.runtime import Runtime
from checks.base import CheckContext
from tests.helpers import async_wait_until


def config(port: int, timeout: int, state: Path) -> Config:
    return load_config_text(
        f"""
agent: {{name: a, state_dir: {state}}}
checks:
  - {{name: h1, type: http, url: "http://127.0.0.1:{port}/a", interval: 60s, timeout: {timeout}s}}
  - {{name: h2, type: http, url: "http://127.0.0.1:{port}/b", interval: 60s, timeout: {timeout}s}}
""",
        "t.yaml",
    )


async def test_a_reload_with_a_probe_waiting_for_its_slot_leaks_no_session(
    tmp_path: Path,
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts and never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reported: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: reported.append(str(ctx.get("message"))))
    runtime = Runtime(ResultBook(), CheckContext(tmp_path, "a"), max_concurrency=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the handler above reports it
            runtime.apply(config(port, 1, tmp_path).checks)
            runtime._spawn("h1", None)
            runtime._spawn("h2", None)  # waits: one slot, h1 holds it
            old = set(runtime._inflight)
            await async_wait_until(lambda: held, 5, "h1 connected, h2 waiting for the slot")
            runtime.apply(config(port, 2, tmp_path).checks)  # both replaced
            await asyncio.wait(old, timeout=10)
            await asyncio.gather(*runtime._closing)
            gc.collect()
            await asyncio.sleep(0)
    finally:
        await runtime.stop(1)
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
        loop.set_exception_handler(None)
    leaks: list[Any] = [m for m in reported if "Unclosed" in m]
    assert leaks == []
