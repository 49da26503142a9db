"""Acks and silences at a fleet agent that does not hold the engine lease are passed
to the holder through the shared store (alerting/forwarding.py), and answered with
the holder's verdict: two alerting services on one real PostgreSQL, in one process.

Before issue 11's forwarding a non-holder refused them (409); these fail then."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.state.postgres import PostgresStore
from agent.web.app import errors_as_json
from alerting.forwarding import ForwardError
from alerting.service import AlertingService
from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import config_from
from tests.helpers import async_wait_until

CONFIG = """
agent: {{name: {name}, state_dir: {state}, store: "{dsn}", fleet: {{lease: 3s}}}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [oncall]}}
channels:
  oncall: {{type: log}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 2}}
departments:
  - id: social
    systems: [{{id: case, checks: [web]}}]
    escalation:
      - {{after: 0m, notify: [oncall]}}
"""


async def service_on(dsn: str, name: str, state: Path) -> AlertingService:
    config = config_from(CONFIG.format(name=name, state=state, dsn=dsn))
    store = PostgresStore(dsn, agent=name)
    await store.open()
    service = AlertingService(config, store)
    await service.start()
    return service


async def stop(service: AlertingService) -> None:
    await service.stop()
    await service.raw_store.close()


@pytest.fixture
async def pair(
    tmp_path: Path, pg_server: PgServer
) -> AsyncIterator[tuple[AlertingService, AlertingService]]:
    """(holder, non-holder), the holder with one open incident."""
    dsn = pg_server.new_database()
    holder = await service_on(dsn, "srv-a", tmp_path / "a")
    other: AlertingService | None = None
    try:
        await async_wait_until(lambda: holder.holding, 10, "srv-a takes the lease")
        other = await service_on(dsn, "srv-b", tmp_path / "b")
        for _ in range(2):
            holder.observe("web", "critical", "connection refused", time.time())
        await holder.commit()
        assert holder.engine is not None and len(holder.engine.state.incidents) == 1
        assert not other.holding
        yield holder, other
    finally:
        if other is not None:
            await stop(other)
        await stop(holder)


async def test_an_ack_at_a_non_holder_is_applied_by_the_holder(
    pair: tuple[AlertingService, AlertingService],
) -> None:
    holder, other = pair
    assert holder.engine is not None
    [incident_id] = holder.engine.state.incidents
    acked = await other.acknowledge(incident_id, "anna", "on my way", "api")
    assert acked.id == incident_id and acked.acked_by == "anna"
    assert acked.ack_comment == "on my way" and acked.ack_via == "api"
    assert holder.engine.state.incidents[incident_id].acked_by == "anna"
    timeline = await holder.store.timeline(incident_id)
    assert any(e["kind"] == "acknowledged" for e in timeline), timeline

    with pytest.raises(ForwardError, match="no open incident 9999") as refused:
        await other.acknowledge(9999, "anna", "", "api")
    assert refused.value.status == 404


async def test_an_sms_code_at_a_non_holder_acknowledges(
    pair: tuple[AlertingService, AlertingService],
) -> None:
    holder, other = pair
    assert holder.engine is not None
    [incident] = holder.engine.state.incidents.values()
    reply = await other.acknowledge_code(f"K {incident.ack_code} on my way", "+46701234567")
    assert reply.acknowledged and reply.incident_id == incident.id, reply
    assert holder.engine.state.incidents[incident.id].acked_by == "Anna Lind"
    stranger = await other.acknowledge_code(f"K {incident.ack_code}", "+46700000099")
    assert not stranger.acknowledged and "not a person" in stranger.message


async def test_silences_at_a_non_holder_are_the_holders(
    pair: tuple[AlertingService, AlertingService],
) -> None:
    holder, other = pair
    assert holder.engine is not None
    now = time.time()
    silence = await other.add_silence({"check": "web"}, now, now + 3600, "patching", "anna")
    assert holder.engine.state.silences[silence.id].comment == "patching"
    assert silence.created_by == "anna"
    expired = await other.expire_silence(silence.id)
    assert expired.id == silence.id and expired.ends_at <= time.time()
    assert silence.id not in holder.engine.state.silences
    with pytest.raises(ForwardError, match="no active silence 4242") as refused:
        await other.expire_silence(4242)
    assert refused.value.status == 404


async def test_without_a_holder_that_applies_it_the_request_is_cancelled(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    lonely = await service_on(dsn, "srv-b", tmp_path / "b")
    try:
        # A holder that is live but never applies anything: a hung agent.
        store = lonely.raw_store
        assert isinstance(store, PostgresStore)
        dbname = dsn.rsplit("/", 1)[1].split("?", 1)[0]
        pg_server.psql(
            "INSERT INTO leases VALUES ('engine', 'ghost/1', 'ghost', 7,"
            " now() + interval '1 hour') ON CONFLICT (name) DO UPDATE SET holder='ghost/1',"
            " holder_name='ghost', token=7, expires_at=now() + interval '1 hour'",
            dbname,
        )
        await async_wait_until(lambda: not lonely.holding, 5, "srv-b is not the holder")
        lonely.forwarding.wait = 1.0
        asked = time.monotonic()
        with pytest.raises(ForwardError, match="no engine holder took it") as unanswered:
            await lonely.add_silence({"check": "*"}, time.time(), time.time() + 60, "", "anna")
        assert unanswered.value.status == 503
        assert time.monotonic() - asked < 3.0, "answered within its wait, not later"
        assert pg_server.psql("SELECT state FROM requests", dbname) == "cancelled"

        # The lease frees up: srv-b takes it, and the cancelled request stays unapplied.
        pg_server.psql("UPDATE leases SET expires_at=now() - interval '1 second'", dbname)
        await async_wait_until(lambda: lonely.holding, 5, "srv-b takes the lease")
        assert lonely.engine is not None and not lonely.engine.state.silences
        assert pg_server.psql("SELECT state FROM requests", dbname) == "cancelled"
    finally:
        await stop(lonely)


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "no open incident 9"), (503, "not applied: no engine holder took it within 5 s")],
)
async def test_the_web_layer_answers_the_holders_verdict(status: int, reason: str) -> None:
    async def ack(request: web.Request) -> web.Response:
        raise ForwardError(status, reason)

    app = web.Application(middlewares=[errors_as_json])
    app.router.add_post("/ack", ack)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/ack", json={}, headers={"Host": "127.0.0.1"})
        assert response.status == status
        assert (await response.json())["error"] == reason
