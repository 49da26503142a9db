"""An ack or silence sent to a fleet agent that does not hold the engine lease gets a
clear 409 naming where to send it, not a 500 (issue 11; the web layer's bad-input rule)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.state.sqlite import Store
from agent.web.app import errors_as_json
from alerting.service import AlertingService, NotHolder
from tests.alerting_fixtures import config_from


async def test_writes_at_a_non_holder_are_refused(tmp_path: Path) -> None:
    config = config_from(f"agent: {{name: a, state_dir: {tmp_path}}}\n")
    store = Store(tmp_path)
    await store.open()
    service = AlertingService(config, store)
    service.holding = False  # another agent holds the engine
    try:
        with pytest.raises(NotHolder, match="holder"):
            await service.acknowledge(1, "anna", "")
        with pytest.raises(NotHolder):
            await service.add_silence({"check": "*"}, 0.0, 60.0, "", "anna")
        with pytest.raises(NotHolder):
            await service.expire_silence(1)
    finally:
        await store.close()


async def test_the_web_layer_answers_409_with_the_reason() -> None:
    async def ack(request: web.Request) -> web.Response:
        raise NotHolder("this agent does not hold the fleet's engine lease")

    app = web.Application(middlewares=[errors_as_json])
    app.router.add_post("/ack", ack)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/ack", json={}, headers={"Host": "127.0.0.1"})
        assert response.status == 409
        assert "engine lease" in (await response.json())["error"]
