"""When a backup was last verified or restore-tested, and how it went; kept across restarts.

Outcomes live in the agent's state store (CheckContext.store) and are also put
into the result facts as unix times, so readiness can be decided from results.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from checks.backup_tool import ToolError
from checks.base import CheckContext
from core.humanize import ago

VERIFY = "verify"
RESTORE = "restore"
# Fact names per kind: last attempt, its outcome, last success (readiness reads these).
FACTS = {
    VERIFY: ("verify_at", "verify_ok", "verified_at"),
    RESTORE: ("restore_test_at", "restore_ok", "restore_tested_at"),
}
WORDS = {VERIFY: "repository check", RESTORE: "restore test"}


@dataclass(frozen=True)
class Outcome:
    at: float
    ok: bool
    detail: str
    last_ok_at: float | None = None
    subject: str = ""  # what was verified (file and mtime), so a new backup is verified anew
    seconds: float | None = None  # how long it took (a restore test against the RTO)

    @classmethod
    def from_json(cls, data: Any) -> Outcome | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                at=float(data["at"]),
                ok=bool(data["ok"]),
                detail=str(data.get("detail", "")),
                last_ok_at=None if data.get("last_ok_at") is None else float(data["last_ok_at"]),
                subject=str(data.get("subject", "")),
                seconds=None if data.get("seconds") is None else float(data["seconds"]),
            )
        except (KeyError, TypeError, ValueError):
            return None  # a corrupt record is treated as "never done"


async def load(ctx: CheckContext, check: str, kind: str) -> Outcome | None:
    return Outcome.from_json(await ctx.store.get_state(check, kind))


async def save(ctx: CheckContext, check: str, kind: str, outcome: Outcome) -> None:
    await ctx.store.set_state(check, kind, asdict(outcome))


def is_due(last: Outcome | None, every: float, now: float, subject: str = "") -> bool:
    """Due when never done, failed last time (so a repair is noticed), stale, or for new data."""
    if last is None or not last.ok or subject != last.subject:
        return True
    return now - last.at >= every


Action = Callable[[], Awaitable[tuple[bool, str]]]


async def run_if_due(
    ctx: CheckContext,
    check: str,
    kind: str,
    every: float | None,
    action: Action,
    subject: str = "",
) -> Outcome | None:
    """Run `action` when due and record its outcome; return the latest outcome."""
    now = ctx.clock()
    last = await load(ctx, check, kind)
    if every is None or not is_due(last, every, now, subject):
        return last
    started = time.monotonic()
    try:
        passed, detail = await action()
    except ToolError as exc:
        if exc.transient:
            return last  # no verdict this time (e.g. repository locked): keep the old one
        passed, detail = False, exc.reason
    previous_ok = last.last_ok_at if last else None
    took = round(time.monotonic() - started, 3)
    outcome = Outcome(now, passed, detail, now if passed else previous_ok, subject, took)
    await save(ctx, check, kind, outcome)
    return outcome


def facts(kind: str, outcome: Outcome | None) -> dict[str, float]:
    if outcome is None:
        return {}
    at, ok, last_ok = FACTS[kind]
    out = {at: outcome.at, ok: 1.0 if outcome.ok else 0.0}
    if outcome.seconds is not None:
        out[f"{kind}_seconds"] = outcome.seconds
    if outcome.last_ok_at is not None:
        out[last_ok] = outcome.last_ok_at
    return out


def problem(kind: str, outcome: Outcome | None, word: str | None = None) -> str | None:
    if outcome is None or outcome.ok:
        return None
    return f"{word or WORDS[kind]} failed: {outcome.detail}"


def note(kind: str, outcome: Outcome | None, now: float, word: str | None = None) -> str:
    if outcome is None:
        return f"{word or WORDS[kind]} not done yet"
    verdict = "passed" if outcome.ok else "failed"
    return f"{word or WORDS[kind]} {verdict} {ago(now, outcome.at)}"
