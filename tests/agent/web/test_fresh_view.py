"""A read at a fleet agent first brings its view up to date (agent/web/app.py
`fresh_view`), but never waits on a store that does not answer, and never fails
because that read failed: the answer then comes from memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import pytest
from aiohttp import web

from agent.configload import load_config_text
from agent.web.app import VIEW_WAIT, build_app
from agent.web.guard import GuardedSite

if TYPE_CHECKING:
    from agent.daemon import Agent


class ViewAgent:
    """What these routes read of an agent; its view read is the code's collaborator."""

    def __init__(self, read: Callable[[], Coroutine[Any, Any, None]], fleet: bool = True) -> None:
        # A fleet's store URL is only parsed here: nothing connects to it.
        store = ', store: "postgresql://vaktpost@127.0.0.1:1/vaktpost"' if fleet else ""
        self.config = load_config_text(f"agent: {{listen: 127.0.0.1:9{store}}}\n", "<test>")
        self.read = read
        self.reads = 0

    def check_results_json(self) -> list[dict[str, Any]]:
        return [{"name": "web", "status": "ok", "reads_begun": self.reads}]

    async def fresh_view(self) -> None:
        self.reads += 1
        await self.read()


async def serve(agent: ViewAgent) -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(cast("Agent", agent)), access_log=None)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site.port}"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, Any, float]:
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        body = await r.json()
        return r.status, body, time.monotonic() - started


async def hang() -> None:
    await asyncio.Event().wait()  # a store that takes the query and never answers


async def fail() -> None:
    raise RuntimeError("connection refused")


async def quick() -> None:
    pass


@pytest.fixture(params=["hangs", "fails", "answers"])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, ViewAgent, str]]:
    agent = ViewAgent({"hangs": hang, "fails": fail, "answers": quick}[request.param])
    async for url in serve(agent):
        yield request.param, agent, url


async def test_a_read_is_answered_whatever_the_view_read_does(
    case: tuple[str, ViewAgent, str], caplog: pytest.LogCaptureFixture
) -> None:
    kind, agent, url = case
    status, body, took = await get(url + "/api/v1/checks")
    assert status == 200 and body["checks"][0]["name"] == "web"
    assert agent.reads == 1, "the read did not ask for a fresh view first"
    if kind == "hangs":
        # Waited for the view no longer than VIEW_WAIT (with room for a busy machine).
        assert VIEW_WAIT <= took < VIEW_WAIT + 4
    if kind == "fails":
        assert "reading the fleet's view failed" in caplog.text


async def test_health_and_pushes_do_not_read_the_view() -> None:
    agent = ViewAgent(hang)
    async for url in serve(agent):
        status, _, _ = await get(url + "/healthz")
        assert status == 200 and agent.reads == 0
        status, _, _ = await get(url + "/api/v1/push/nightly-backup")  # no such route here
        assert status == 404 and agent.reads == 0


async def test_an_agent_alone_has_no_view_to_read() -> None:
    agent = ViewAgent(hang, fleet=False)
    async for url in serve(agent):
        status, _, _ = await get(url + "/api/v1/checks")
        assert status == 200 and agent.reads == 0
