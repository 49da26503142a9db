"""The store contract: one list of scenarios against every store implementation
(agent/state/interface.py). A new implementation registers in conftest.py."""

from __future__ import annotations

import time

import pytest

from agent.state.interface import OutboxUpdate
from agent.state.sqlite_schema import MIGRATIONS
from alerting.model import CheckTrack, EngineState, Event, Incident, Notification, Outcome, Silence
from tests.state.conftest import Stores

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
