"""The history contract (agent/state/interface.py HistoryStore): the same scenarios
against SQLite and a real PostgreSQL (tests/agent/state/conftest.py `stores`). In a fleet
the history is the shared store's, so every agent and `vaktpost report` see it."""

from __future__ import annotations

from agent.state.interface import OutboxUpdate
from agent.state.pg_history import PostgresHistory
from alerting.model import EngineState, Event, Incident, Notification, Outcome
from tests.agent.state.conftest import Stores

T0 = 1_767_261_600.0
DAY = 86400.0


def incident(iid: int, started: float, resolved: float | None) -> Incident:
    found = Incident(iid, "social", f"sys{iid}", started, checks=["web"])
    found.resolved_at = resolved
    return found


async def persist(stores: Stores, incidents: list[Incident], out: Outcome | None = None) -> None:
    out = out or Outcome()
    out.incidents.update({i.id: i for i in incidents})
    await stores.alerting.persist(out, EngineState(next_incident_id=10))


async def test_status_changes_are_read_back_with_the_state_at_the_window_start(
    stores: Stores,
) -> None:
    h = stores.history
    await h.record_changes(
        [
            ("web", T0, "ok", "up"),
            ("web", T0 + 10, "critical", "refused"),
            ("db", T0 + 5, "ok", "up"),
            ("web", T0 + 100, "ok", "up again"),
            ("db", T0 + 200, "warning", "slow"),
        ]
    )
    await stores.reopen()
    h = stores.history
    assert await h.last_statuses() == {"web": "ok", "db": "warning"}
    assert await h.last_statuses({"db", "nope"}) == {"db": "warning"}
    changes = await h.check_changes(None, T0 + 50, T0 + 150)
    # Each check in name order: its state at the start, then its changes in time order.
    assert [(c["check"], c["at"], c["status"]) for c in changes] == [
        ("db", T0 + 5, "ok"),
        ("web", T0 + 10, "critical"),
        ("web", T0 + 100, "ok"),
    ]
    assert changes[2]["message"] == "up again"
    only = await h.check_changes("web", T0, T0 + 50)
    assert [(c["at"], c["status"]) for c in only] == [(T0, "ok"), (T0 + 10, "critical")]


async def test_the_audit_trail_is_newest_first_since_a_time(stores: Stores) -> None:
    h = stores.history
    await h.audit(T0, "anna", "reload", "/etc/vaktpost.yaml", "ok")
    await h.audit(T0 + 60, "bo", "significant", "incident 3", "NIS2")
    await h.audit(T0 + 120, "cia", "reported", "incident 3", "early_warning")
    trail = await h.audit_trail(T0 + 30)
    assert [(e["actor"], e["action"], e["target"]) for e in trail] == [
        ("cia", "reported", "incident 3"),
        ("bo", "significant", "incident 3"),
    ]
    assert trail[1] == {
        "at": T0 + 60,
        "actor": "bo",
        "action": "significant",
        "target": "incident 3",
        "detail": "NIS2",
    }
    assert len(await h.audit_trail(0, limit=1)) == 1


async def test_restore_tests_are_kept_once_each_and_read_by_window(stores: Stores) -> None:
    h = stores.history
    await h.record_restore_tests([("bk", T0, True, 42.5), ("bk2", T0 + 10, False, None)])
    # Every run of a backup check carries its last test again, on every agent that ran it.
    await h.record_restore_tests([("bk", T0, True, 42.5), ("bk", T0 + DAY, True, 40.0)])
    tests = await h.restore_tests(T0, T0 + DAY)
    assert tests == [
        {"check": "bk", "at": T0, "ok": True, "seconds": 42.5},
        {"check": "bk2", "at": T0 + 10, "ok": False, "seconds": None},
    ]
    assert len(await h.restore_tests(0, T0 + 2 * DAY)) == 3


async def test_spans_overlap_the_window_and_carry_the_first_ack(stores: Stores) -> None:
    out = Outcome()
    out.events += [
        Event(T0 + 100, "acknowledged", 2, message="anna via sms: on it"),
        Event(T0 + 300, "acknowledged", 2, message="bo: me too"),
        Event(T0 + 50, "opened", 3, message="db"),
    ]
    await persist(
        stores,
        [
            incident(1, T0 - 2 * DAY, T0 - DAY),  # over before the window
            incident(2, T0 - 60, T0 + 3600),  # started before, ended inside
            incident(3, T0 + 50, None),  # still open
        ],
        out,
    )
    spans = await stores.history.spans(T0, T0 + DAY)
    assert [s.id for s in spans] == [2, 3]
    two, three = spans
    assert (two.department, two.system, two.started_at) == ("social", "sys2", T0 - 60)
    assert two.resolved_at == T0 + 3600 and two.first_ack_at == T0 + 100
    assert two.data["id"] == 2
    assert three.resolved_at is None and three.first_ack_at is None
    acks = await stores.history.acks(T0)
    assert acks == [
        {"at": T0 + 100, "actor": "anna", "action": "ack", "target": "incident 2",
         "detail": "on it", "via": "sms"},
        {"at": T0 + 300, "actor": "bo", "action": "ack", "target": "incident 2",
         "detail": "me too", "via": None},
    ]  # fmt: skip
    assert await stores.history.acks(T0 + 200) == acks[1:]


async def test_prune_keeps_open_incidents_pending_rows_and_each_checks_last_change(
    stores: Stores,
) -> None:
    cut = T0
    out = Outcome(
        notifications=[
            Notification("k/1/0", "hook", 1, "firing", cut - 3 * DAY, {}),
            Notification("k/1/1", "sms", 1, "firing", cut - 3 * DAY, {}),
            Notification("k/2/0", "hook", 2, "firing", cut - 3 * DAY, {}),
        ]
    )
    out.events += [
        Event(cut - 3 * DAY, "opened", 1),
        Event(cut - 3 * DAY, "opened", 2),
        Event(cut + 10, "opened", 3),
    ]
    await persist(
        stores,
        [
            incident(1, cut - 3 * DAY, cut - 2 * DAY),  # resolved before the cut: goes
            incident(2, cut - 3 * DAY, None),  # open: stays however old
            incident(3, cut + 10, cut + 20),  # resolved after the cut: stays
        ],
        out,
    )
    hook = await stores.alerting.head("hook", 10)
    delivered = [r for r in hook if r.dedup_key == "k/1/0"]
    await stores.alerting.record([OutboxUpdate(delivered[0], "delivered", 1, cut, done_at=cut)])
    h = stores.history
    await h.record_changes(
        [
            ("web", cut - 3 * DAY, "ok", ""),
            ("web", cut - 2 * DAY, "critical", ""),  # its last before the cut: kept
            ("web", cut + 5, "ok", ""),
            ("old", cut - 3 * DAY, "ok", ""),  # the only one of its check: kept
        ]
    )
    await h.audit(cut - 1, "anna", "reload", "cfg", "")
    await h.audit(cut + 1, "bo", "reload", "cfg", "")
    await h.record_restore_tests([("bk", cut - 1, True, 1.0), ("bk", cut + 1, True, 1.0)])
    assert await stores.fleet.take_lease(30.0) is not None  # a shared store: the holder prunes

    counts = await h.prune(cut)
    assert counts == {
        "incident_events": 1,
        "outbox": 1,
        "incidents": 1,
        "check_history": 1,
        "audit_log": 1,
        "restore_tests": 1,
    }
    assert [s.id for s in await h.spans(0, cut + DAY)] == [2, 3]
    # Incident 1's undelivered sms row is still owed; its delivered hook row is gone.
    assert {(k, c) for k, c, _ in await stores.alerting.deliveries()} == {
        ("k/1/1", "sms"),
        ("k/2/0", "hook"),
    }
    assert [e["kind"] for e in await stores.alerting.timeline(1)] == ["delivery"]
    assert [e["kind"] for e in await stores.alerting.timeline(2)] == ["opened", "delivery"]
    changes = await h.check_changes(None, cut, cut + DAY)
    assert [(c["check"], c["status"]) for c in changes] == [
        ("old", "ok"),
        ("web", "critical"),
        ("web", "ok"),
    ]
    assert [e["actor"] for e in await h.audit_trail(0)] == ["bo"]
    assert [t["at"] for t in await h.restore_tests(0, cut + DAY)] == [cut + 1]
    assert await h.prune(cut) == dict.fromkeys(counts, 0)


async def test_a_shared_store_is_pruned_by_the_engine_holder_only(
    shared_stores: Stores,
) -> None:
    # An embedded store is a fleet of one: its agent always holds the engine.
    stores = shared_stores
    assert stores.peer is not None
    await persist(stores, [incident(1, T0 - 3 * DAY, T0 - 2 * DAY)])
    await stores.history.audit(T0 - 1, "anna", "reload", "cfg", "")
    other = await stores.peer()
    assert await stores.fleet.take_lease(30.0) is not None
    # Two agents pruning on their own clocks would race; only the holder deletes.
    assert await PostgresHistory(other).prune(T0) == {}
    assert [s.id for s in await stores.history.spans(0, T0)] == [1]
    counts = await stores.history.prune(T0)
    assert counts["incidents"] == 1 and counts["audit_log"] == 1


async def test_every_agent_of_a_fleet_reads_every_agents_history(shared_stores: Stores) -> None:
    stores = shared_stores
    assert stores.peer is not None
    other = PostgresHistory(await stores.peer())
    await stores.history.record_changes([("a-check", T0, "critical", "down")])
    await other.record_changes([("b-check", T0 + 1, "ok", "up")])
    await other.audit(T0 + 2, "anna", "reload", "cfg", "")
    await other.record_restore_tests([("bk", T0 + 3, True, 9.0)])
    for reader in (stores.history, other):
        assert await reader.last_statuses() == {"a-check": "critical", "b-check": "ok"}
        assert [e["actor"] for e in await reader.audit_trail(0)] == ["anna"]
        assert [t["check"] for t in await reader.restore_tests(0, T0 + DAY)] == ["bk"]
