"""The store contract: one list of scenarios against every store implementation
(agent/state/interface.py). A new implementation registers in conftest.py."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from agent.state.interface import OutboxUpdate
from agent.state.sqlite_schema import MIGRATIONS
from alerting.model import CheckTrack, EngineState, Event, Incident, Notification, Outcome, Silence
from tests.agent.state.conftest import Stores
from tests.helpers import async_wait_until

T0 = 1_767_261_600.0


def note(key: str, channel: str, incident: int = 1) -> Notification:
    return Notification(key, channel, incident, "firing", T0, {"dedup_key": key})


def incident(iid: int = 1) -> Incident:
    return Incident(
        iid,
        "social",
        "case",
        T0,
        checks=["web"],
        impacted=[("school", "lms")],
        steps_taken=[0, 1],
        current_step=1,
        repeats=2,
        last_notified_at=T0 + 600,
        notified=["oncall", "duty"],
        acked_by="anna",
        acked_at=T0 + 700,
        ack_comment="on it",
        acks=1,
        rto_breached=True,
        caused_by=None,
        root="web",
    )


async def test_schema_is_current_and_data_survives_a_restart(stores: Stores) -> None:
    await stores.results.set_state("web", "verified_at", T0)
    await stores.reopen()
    assert await stores.results.get_state("web", "verified_at") == T0
    assert stores.results.is_open and stores.results.writable
    assert len(MIGRATIONS) >= 1


async def test_results_round_trip_and_upsert(stores: Stores) -> None:
    def row(status: str) -> tuple[str, str, dict[str, object]]:
        data = {"status": status, "message": "m", "facts": {"rtt": 0.1}}
        return ("web", "tcp", {**data, "duration_seconds": 0.1, "finished_at": T0})

    await stores.results.save_results([row("ok")])
    await stores.results.save_results([row("critical")])
    await stores.reopen()
    loaded = await stores.results.load_results()
    assert list(loaded) == ["web"]
    assert loaded["web"]["status"] == "critical"
    assert loaded["web"]["facts"] == {"rtt": 0.1}


async def test_per_check_state_missing_is_none_and_values_are_json(stores: Stores) -> None:
    assert await stores.results.get_state("nope", "k") is None
    await stores.results.set_state("c", "k", {"a": [1, 2], "b": None})
    await stores.results.set_state("c", "k", {"a": [3]})
    assert await stores.results.get_state("c", "k") == {"a": [3]}


async def test_incidents_and_their_clocks_survive_a_restart(stores: Stores) -> None:
    state = EngineState(next_incident_id=2)
    state.checks["web"] = CheckTrack("web", "critical", "down", 2, 0, True, T0)
    state.incidents[1] = incident()
    out = Outcome(incidents={1: state.incidents[1]}, checks={"web": state.checks["web"]})
    out.events.append(Event(T0, "opened", 1, message="web"))
    out.events.append(Event(T0 + 600, "notify", 1, 1, ("duty",)))
    await stores.alerting.persist(out, state)
    await stores.reopen()
    loaded = await stores.alerting.load_state()
    assert loaded.incidents[1] == incident(), "every field, the clocks included"
    assert loaded.checks["web"].confirmed and loaded.checks["web"].since == T0
    assert loaded.next_incident_id == 2
    timeline = await stores.alerting.timeline(1)
    assert [(e["kind"], e["step"], e["channels"]) for e in timeline] == [
        ("opened", None, []),
        ("notify", 1, ["duty"]),
    ]
    listed = await stores.alerting.incidents("open")
    assert [i["id"] for i in listed] == [1]


async def test_a_resolved_incident_is_not_loaded_as_open(stores: Stores) -> None:
    done = incident()
    done.resolved_at = T0 + 900
    state = EngineState(next_incident_id=2)
    await stores.alerting.persist(Outcome(incidents={1: done}), state)
    await stores.reopen()
    assert (await stores.alerting.load_state()).incidents == {}
    assert [i["id"] for i in await stores.alerting.incidents("resolved")] == [1]


async def test_outbox_order_dedup_record_and_fallback(stores: Stores) -> None:
    box = stores.alerting
    notes = [note(f"a/d/s/1/{i}", "hook") for i in range(3)]
    await box.persist(Outcome(notifications=notes), EngineState())
    # The same (dedup key, channel) queued again is not doubled; another channel is separate.
    await box.persist(Outcome(notifications=[notes[0], note("a/d/s/1/0", "sms")]), EngineState())
    head = await box.head("hook", 10)
    assert [r.dedup_key for r in head] == ["a/d/s/1/0", "a/d/s/1/1", "a/d/s/1/2"]
    assert await box.pending_counts() == {"hook": 3, "sms": 1}
    now = time.time()
    await box.record(
        [
            OutboxUpdate(head[0], "delivered", 1, now, done_at=now),
            OutboxUpdate(head[1], "failed", 1, now, "HTTP 400", now, ("lan",)),
        ]
    )
    assert [r.dedup_key for r in await box.head("hook", 10)] == ["a/d/s/1/2"]
    (handed,) = await box.head("lan", 10)
    assert handed.dedup_key == "a/d/s/1/1" and handed.payload == {"dedup_key": "a/d/s/1/1"}
    await stores.reopen()
    states = {(k, c): s for k, c, s in await stores.alerting.deliveries()}
    assert states[("a/d/s/1/0", "hook")] == "delivered"
    assert states[("a/d/s/1/1", "hook")] == "failed"
    assert states[("a/d/s/1/1", "lan")] == "pending"


async def test_an_incident_is_read_by_id_with_its_deliveries_in_the_timeline(
    stores: Stores,
) -> None:
    # The console's and GET /api/v1/incidents/ID's source in a fleet too (the agent's
    # own SQLite has no incidents there): the timeline was empty on PostgreSQL.
    state = EngineState(next_incident_id=2)
    state.incidents[1] = incident()
    out = Outcome(incidents={1: state.incidents[1]}, notifications=[note("a/d/s/1/0", "hook")])
    out.events.append(Event(T0, "opened", 1, message="web"))
    await stores.alerting.persist(out, state)
    (row,) = await stores.alerting.head("hook", 10)
    await stores.alerting.record([OutboxUpdate(row, "delivered", 1, T0 + 5, done_at=T0 + 5)])
    assert (await stores.alerting.incident(1) or {})["id"] == 1
    assert await stores.alerting.incident(99) is None
    timeline = await stores.alerting.timeline(1)
    assert [(e["kind"], e["at"]) for e in timeline] == [("opened", T0), ("delivery", T0 + 5)]
    assert timeline[1]["outcome"] == "delivered" and timeline[1]["dedup_key"] == "a/d/s/1/0"


async def test_a_held_notification_keeps_its_due_time(stores: Stores) -> None:
    held = Notification("a/-/up/1/0", "hook", 1, "firing", T0, {"group_key": "up"}, T0 + 10)
    await stores.alerting.persist(Outcome(notifications=[held]), EngineState())
    (row,) = await stores.alerting.head("hook", 1)
    assert row.next_attempt_at == T0 + 10 and row.created_at == T0


async def test_silences_and_their_ids_survive_a_restart(stores: Stores) -> None:
    state = EngineState(next_silence_id=3)
    silence = Silence(2, {"check": "web*"}, T0, T0 + 3600, "patch", "anna")
    await stores.alerting.save_silence(silence, state)
    await stores.reopen()
    assert await stores.alerting.silences() == [silence]
    assert (await stores.alerting.load_state()).next_silence_id == 3


async def test_a_failed_persist_leaves_nothing_and_can_be_retried(stores: Stores) -> None:
    state = EngineState(next_incident_id=2)
    state.incidents[1] = incident()
    bad = Notification("a/d/s/1/0", "hook", 1, "firing", T0, {"unserialisable": {1, 2}})
    out = Outcome(incidents={1: state.incidents[1]}, notifications=[bad])
    with pytest.raises(TypeError):
        await stores.alerting.persist(out, state)
    await stores.reopen()
    assert (await stores.alerting.load_state()).incidents == {}
    assert await stores.alerting.head("hook", 10) == []
    good = Outcome(incidents={1: state.incidents[1]}, notifications=[note("a/d/s/1/0", "hook")])
    await stores.alerting.persist(good, state)
    assert [r.dedup_key for r in await stores.alerting.head("hook", 10)] == ["a/d/s/1/0"]


async def test_two_claimers_racing_for_queued_notifications_never_share_one(
    stores: Stores,
) -> None:
    """Delivery claims (FOR UPDATE SKIP LOCKED in a shared store): two agents, or two
    lanes of one agent, claiming at once take disjoint rows, and together all."""
    keys = [f"a/d/s/1/{i}" for i in range(20)]
    past = time.time() - 60
    notes = [Notification(k, "hook", 1, "firing", past, {"dedup_key": k}) for k in keys]
    await stores.alerting.persist(Outcome(notifications=notes), EngineState())
    other = await stores.peer() if stores.peer else stores.fleet
    for _ in range(5):  # several rounds: each a real race between two connections
        a, b = await asyncio.gather(stores.fleet.claim("hook", 2), other.claim("hook", 2))
        assert not {r.id for r in a} & {r.id for r in b}, "one row claimed twice"
    rest_a, rest_b = await asyncio.gather(stores.fleet.claim("hook", 50), other.claim("hook", 50))
    assert not {r.id for r in rest_a} & {r.id for r in rest_b}
    # Nothing was delivered: every row is still pending, only claimed, and all were taken.
    assert len(await stores.alerting.head("hook", 50)) == 20
    assert await stores.fleet.claim("hook", 50) == [], "a claim lasts until it is released"


async def test_a_claim_lapses_and_a_recorded_row_is_not_claimed_again(stores: Stores) -> None:
    past = time.time() - 60
    notes = [Notification(f"k{i}", "hook", 1, "firing", past, {}) for i in range(2)]
    await stores.alerting.persist(Outcome(notifications=notes), EngineState())
    first = await stores.fleet.claim("hook", 1, hold=0.2)
    assert [r.dedup_key for r in first] == ["k0"], "oldest first"
    other = await stores.peer() if stores.peer else stores.fleet
    assert [r.dedup_key for r in await other.claim("hook", 5)] == ["k1"], "k0 is held"
    # The claimer died mid-send: once its claim lapses another takes the row again.
    again = await async_wait_until(lambda: other.claim("hook", 5), timeout=10, what="lapse")
    assert [r.dedup_key for r in again] == ["k0"]
    now = time.time()
    await stores.alerting.record([OutboxUpdate(again[0], "delivered", 1, now, done_at=now)])
    assert await other.claim("hook", 5) == [], "k0 is delivered, k1 still held"
    assert [r.dedup_key for r in await stores.alerting.head("hook", 5)] == ["k1"]


async def test_two_agents_racing_for_the_engine_lease_one_wins_and_fencing(
    stores: Stores,
) -> None:
    """The engine lease: a conditional update on database time. Exactly one of two
    racing agents takes it; the other takes it only after it lapses, with a higher
    token, and then the deposed holder's writes are refused."""
    if stores.peer is None:
        # An embedded store is a fleet of one: its agent always holds the lease.
        a, b = await asyncio.gather(stores.fleet.take_lease(1.0), stores.fleet.take_lease(1.0))
        assert a == b == 1
        return
    from agent.state.postgres_errors import FencedError

    other = await stores.peer()
    for _ in range(5):
        a, b = await asyncio.gather(stores.fleet.take_lease(0.5), other.take_lease(0.5))
        assert (a is None) != (b is None), f"exactly one holder, got tokens {a} and {b}"
        holder, waiting, token = (stores.fleet, other, a) if a else (other, stores.fleet, b)
        assert await holder.take_lease(0.5) == token, "renewal keeps the token"
        assert await waiting.take_lease(0.5) is None
        taken = await async_wait_until(
            functools.partial(waiting.take_lease, 0.5), timeout=10, what="lapse"
        )
        assert taken == token + 1, "a new holder gets a new token"
        holder.fence, waiting.fence = token, taken
        state = EngineState(next_incident_id=2)
        state.incidents[1] = incident()
        with pytest.raises(FencedError):
            await holder.persist(Outcome(incidents={1: state.incidents[1]}), state)
        assert (await waiting.load_state()).incidents == {}, "a refused write leaves nothing"
        await waiting.persist(Outcome(checks={}), state)
        await waiting.release_lease()  # a clean stop: the next round races afresh
        holder.fence = waiting.fence = None


async def test_update_state_is_one_step_even_from_two_agents(stores: Stores) -> None:
    # Pushes and Alertmanager webhooks read, change and write one value; an HA pair
    # posting to two agents at once lost one of the two updates with get + set.
    others = [stores.results] if stores.peer is None else [stores.results, await stores.peer()]

    def add(value: object) -> list[int]:
        seen = list(value) if isinstance(value, list) else []
        return [*seen, len(seen)]

    await asyncio.gather(
        *(others[i % len(others)].update_state("alerts", "table", add) for i in range(40))
    )
    assert await stores.results.get_state("alerts", "table") == list(range(40))
