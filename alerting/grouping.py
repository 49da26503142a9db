"""Grouping: notifications of one root cause to one channel go out as ONE message.

The engine holds such notifications for `agent.group_wait` (their outbox row is
due only then) and marks them with a `group_key` (the root checks). When the
first of a group comes due, the outbox takes every pending row of that group
and kind on the channel, sends one merged message led by the root cause, and
records every row's outcome: each grouped dedup key counts as delivered. A crash
between the send and that record leaves all of them pending, so the group is
sent again whole (at-least-once, as for a single row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent.state.interface import OutboxRow
from alerting.payload import what_of
from alerting.text import render


def group_of(row: OutboxRow) -> tuple[str, str] | None:
    key = row.payload.get("group_key")
    return (str(key), row.kind) if key else None


def ready(rows: Sequence[OutboxRow], now: float) -> list[OutboxRow]:
    """The due prefix of a lane, extended by the held rows of every group that is due.

    Order is kept: the first row that is neither due nor in a due group stops it.
    """
    due_groups = {g for r in rows if r.next_attempt_at <= now and (g := group_of(r)) is not None}
    out: list[OutboxRow] = []
    for row in rows:
        if row.next_attempt_at <= now or group_of(row) in due_groups:
            out.append(row)
        else:
            break
    return out


def batches(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """Ready rows as sends: a group of one root cause and kind is one send, others alone."""
    out: list[list[OutboxRow]] = []
    index: dict[tuple[str, str], list[OutboxRow]] = {}
    for row in rows:
        group = group_of(row)
        if group is None:
            out.append([row])
        elif group in index:
            index[group].append(row)
        else:
            index[group] = [row]
            out.append(index[group])
    return out


def _lead(payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The root cause's own notification leads; else the oldest of the group."""
    for p in payloads:
        own = [c for c in p.get("checks", []) if c.get("status") != "unreachable"]
        if p.get("caused_by") is None and own:
            return p
    return payloads[0]


def _as_impacted(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "department": p.get("department"),
        "system": p.get("system"),
        "department_name": p.get("department_name"),
        "system_name": p.get("system_name"),
        "incident_id": p.get("incident_id"),
        "downtime_seconds": p.get("downtime_seconds"),
        "rto_seconds": p.get("rto_seconds"),
        "mtpd_seconds": p.get("mtpd_seconds"),
        "rto_remaining_seconds": p.get("rto_remaining_seconds"),
        "mtpd_remaining_seconds": p.get("mtpd_remaining_seconds"),
        "fallback": p.get("fallback", ""),
    }


def merge(payloads: Sequence[dict[str, Any]], language: str, timezone: str) -> dict[str, Any]:
    """One payload for a group: the lead's, with every member's system in `impacted`."""
    if len(payloads) == 1:
        return payloads[0]
    lead = _lead(payloads)
    merged = dict(lead)
    merged["grouped"] = [p["dedup_key"] for p in payloads]
    impacted: dict[tuple[Any, Any], dict[str, Any]] = {}
    for p in payloads:
        if p is not lead:
            entry = _as_impacted(p)
            impacted[(entry["department"], entry["system"])] = entry
    for entry in lead.get("impacted", []):
        impacted.setdefault((entry.get("department"), entry.get("system")), entry)
    own = (lead.get("department"), lead.get("system"))
    merged["impacted"] = [e for k, e in impacted.items() if k != own]
    started = datetime.strptime(lead["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    merged["text"] = render(
        merged,
        str(lead.get("kind", "firing")),
        language=language,
        timezone=timezone,
        started_ts=started.timestamp(),
        what=what_of(lead),
    )
    return merged
