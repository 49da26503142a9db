"""The state store as an interface: what every implementation must do.

vaktpost keeps results, per-check state, the engine's incidents and their
timeline, silences, the outbox and the history in one store. SQLite
(agent/state/sqlite.py, agent/state/sqlite_alerting.py, agent/state/sqlite_history.py)
is the embedded default; a shared store for a fleet implements the same protocols
(agent/state/postgres.py, agent/state/pg_history.py), and
tests/agent/state/test_store_contract.py and tests/agent/state/test_history_contract.py run
one list of scenarios against every implementation.

The rules every implementation keeps:
- `persist` writes everything one engine outcome changed in ONE transaction;
  a failure leaves nothing of it (the caller retries the whole outcome);
- a (dedup key, channel) pair is queued once: a re-run of a step cannot double it;
- `head` returns a channel's pending rows oldest first; `record` writes a batch
  of send outcomes and the fallback rows they cause at once;
- per-check state and results survive restarts;
- `prune` never drops an open incident, a pending outbox row, or a check's last
  status change before the cut (the state a window starts in).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from alerting.model import EngineState, Outcome, Silence

log = logging.getLogger("vaktpost.store")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    dedup_key: str
    channel: str
    incident_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    created_at: float


@dataclass(frozen=True, slots=True)
class OutboxUpdate:
    row: OutboxRow
    state: str  # pending (retry) | delivered | failed | skipped
    attempts: int
    next_attempt_at: float
    error: str = ""
    done_at: float | None = None
    fallbacks: tuple[str, ...] = ()


class HeldOutcomes:
    """Outbox outcomes a store could not write yet, the same in every store.

    While the store cannot write they are held in memory, and `head` and
    `pending_counts` answer as if they were recorded, until a later write takes
    them: the row stays pending in the store, so a restart meanwhile sends it
    again (same dedup key), but it is neither lost nor re-sent while running.
    """

    def __init__(self) -> None:
        self.updates: dict[int, OutboxUpdate] = {}

    def add(self, updates: Iterable[OutboxUpdate]) -> None:
        for u in updates:
            self.updates[u.row.id] = u

    async def flush(
        self,
        write: Callable[[list[OutboxUpdate]], Awaitable[None]],
        is_failure: Callable[[BaseException], bool],
    ) -> None:
        """Write what is held; on the store's failure keep it (logged), on a bug drop
        this batch and raise (a bug would fail the same way at every try)."""
        if not self.updates:
            return
        batch = list(self.updates.values())
        try:
            await write(batch)
        except Exception as exc:
            if not is_failure(exc):
                for u in batch:
                    self.updates.pop(u.row.id, None)
                raise
            log.warning(
                "outbox outcomes held in memory until the store writes again",
                extra={"held": len(self.updates), "error": str(exc).splitlines()[0][:300]},
            )
            return
        for u in batch:
            if self.updates.get(u.row.id) is u:  # a newer outcome came meanwhile: keep it
                del self.updates[u.row.id]

    def overlay(self, rows: Iterable[OutboxRow], limit: int) -> list[OutboxRow]:
        """Pending rows as the store read them, with the held outcomes applied."""
        out = []
        for row in rows:
            update = self.updates.get(row.id)
            if update is None:
                out.append(row)
            elif update.state == "pending":  # a retry not yet recorded: keep its backoff
                out.append(replace(row, attempts=update.attempts,
                                   next_attempt_at=update.next_attempt_at))  # fmt: skip
        return out[:limit]

    def adjust(self, counts: dict[str, int]) -> dict[str, int]:
        """Pending counts per channel less the rows whose held outcome ended them."""
        for u in self.updates.values():
            if u.state != "pending" and counts.get(u.row.channel):
                counts[u.row.channel] -= 1
        return counts


def dumps(data: Any) -> str:
    """JSON as every store keeps it: compact, UTF-8 as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class OutcomeRows:
    """One engine outcome as table rows, the same for every store; serialised at once,
    on the event loop, so later engine changes cannot leak into the transaction."""

    checks: list[tuple[Any, ...]] = field(default_factory=list)
    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    notes: list[tuple[Any, ...]] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, out: Outcome, state: EngineState) -> OutcomeRows:
        return cls(
            checks=[(name, dumps(t.to_json())) for name, t in out.checks.items()],
            incidents=[
                (
                    i.id,
                    i.department,
                    i.system,
                    i.status,
                    i.started_at,
                    i.resolved_at,
                    dumps(i.to_json()),
                )
                for i in out.incidents.values()
            ],
            events=[
                (e.incident_id, e.at, e.kind, e.step, dumps(list(e.channels)), e.message)
                for e in out.events
            ],
            notes=[
                (
                    n.dedup_key,
                    n.channel,
                    n.incident_id,
                    n.kind,
                    n.created_at,
                    dumps(n.payload),
                    n.created_at if n.due_at is None else n.due_at,
                )
                for n in out.notifications
            ],
            meta=[
                ("next_incident_id", str(state.next_incident_id)),
                ("next_silence_id", str(state.next_silence_id)),
            ],
        )


class ResultStore(Protocol):
    """The latest result of every check, and small per-check state."""

    @property
    def is_open(self) -> bool: ...

    @property
    def writable(self) -> bool: ...

    async def save_results(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None: ...

    async def load_results(self) -> dict[str, dict[str, Any]]: ...

    async def get_state(self, check: str, key: str) -> Any: ...

    async def set_state(self, check: str, key: str, value: Any) -> None: ...

    async def update_state(self, check: str, key: str, change: Callable[[Any], Any]) -> Any: ...


class AlertingStore(Protocol):
    """The engine's state, its timeline, silences and the outbox."""

    async def load_state(self) -> EngineState: ...

    async def persist(self, out: Outcome, state: EngineState) -> None: ...

    async def save_silence(self, silence: Silence, state: EngineState) -> None: ...

    async def silences(self) -> list[Silence]: ...

    async def incidents(self, state: str | None, limit: int = 200) -> list[dict[str, Any]]: ...

    async def timeline(self, incident_id: int) -> list[dict[str, Any]]: ...

    async def incident(self, incident_id: int) -> dict[str, Any] | None: ...

    async def head(self, channel: str, limit: int) -> list[OutboxRow]: ...

    async def record(self, updates: list[OutboxUpdate]) -> None: ...

    async def pending_counts(self) -> dict[str, int]: ...

    async def deliveries(self) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True, slots=True)
class IncidentSpan:
    """One incident as history needs it: who, when, how bad, and its first ack."""

    id: int
    department: str | None
    system: str
    started_at: float
    resolved_at: float | None
    data: dict[str, Any]
    first_ack_at: float | None


class HistoryStore(Protocol):
    """Status changes, the audit trail and restore tests, and the incidents read back
    for availability and the monthly report; pruned past `agent.history`."""

    async def record_changes(self, rows: list[tuple[str, float, str, str]]) -> None:
        """(check, at, status, message) of each status change, in order."""

    async def record_restore_tests(self, rows: list[tuple[str, float, bool, float | None]]) -> None:
        """(check, at, passed, seconds); a (check, at) already recorded is kept once."""

    async def audit(self, at: float, actor: str, action: str, target: str, detail: str) -> None: ...

    async def prune(self, before: float) -> dict[str, int]:
        """Drop what ended before `before`: rows deleted per table. A shared store
        prunes only while this process holds the engine lease ({} otherwise)."""

    async def last_statuses(self, checks: Collection[str] | None = None) -> dict[str, str]:
        """The last recorded status of each check (of these checks, if given)."""

    async def check_changes(
        self, check: str | None, since: float, until: float
    ) -> list[dict[str, Any]]:
        """Changes in [since, until) plus each check's last one before `since`, per
        check in name order, each check's oldest first."""

    async def audit_trail(self, since: float, limit: int = 500) -> list[dict[str, Any]]:
        """Audit entries since `since`, newest first."""

    async def spans(self, since: float, until: float) -> list[IncidentSpan]:
        """Incidents that overlap [since, until), by id, each with its first ack."""

    async def acks(self, since: float) -> list[dict[str, Any]]:
        """Acknowledgements since `since` as audit entries, oldest first."""

    async def restore_tests(self, since: float, until: float) -> list[dict[str, Any]]:
        """Restore tests in [since, until), oldest first."""


def ack_entry(incident_id: int, at: float, message: str) -> dict[str, Any]:
    """An acknowledgement event as an audit entry: the engine records 'who[ via how]: comment'."""
    who, _, comment = message.partition(": ")
    actor, _, via = who.partition(" via ")
    return {
        "at": at,
        "actor": actor,
        "action": "ack",
        "target": f"incident {incident_id}",
        "detail": comment,
        "via": via or None,
    }


def delivery_event(
    dedup_key: str,
    channel: str,
    kind: str,
    state: str,
    attempts: int,
    error: str,
    created_at: float,
    done_at: float | None,
) -> dict[str, Any]:
    """One outbox row as an entry of an incident's timeline (every store's shape)."""
    return {
        "at": done_at if done_at is not None else created_at,
        "kind": "delivery",
        "step": None,
        "channels": [channel],
        "message": f"{kind}: {state}" + (f" ({error})" if error else ""),
        "outcome": state,
        "attempts": attempts,
        "dedup_key": dedup_key,
    }


def in_time_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Stable: events keep their recorded order at equal times, deliveries follow.
    return sorted(events, key=lambda e: (e["at"], e["kind"] == "delivery"))


# The outbox columns delivery_event takes, in its order.
DELIVERY_COLUMNS = "dedup_key, channel, kind, state, attempts, last_error, created_at, done_at"
