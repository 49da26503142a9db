"""The state store as an interface: what every implementation must do.

vaktpost keeps results, per-check state, the engine's incidents and their
timeline, silences and the outbox in one store. SQLite (agent/state/sqlite.py,
agent/state/sqlite_alerting.py) is the embedded default; a shared store for a
fleet implements the same protocols, and tests/state/test_store_contract.py runs
one list of scenarios against every implementation.

The rules every implementation keeps:
- `persist` writes everything one engine outcome changed in ONE transaction;
  a failure leaves nothing of it (the caller retries the whole outcome);
- a (dedup key, channel) pair is queued once: a re-run of a step cannot double it;
- `head` returns a channel's pending rows oldest first; `record` writes a batch
  of send outcomes and the fallback rows they cause at once;
- per-check state and results survive restarts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from alerting.model import EngineState, Outcome, Silence


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
