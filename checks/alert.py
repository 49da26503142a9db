"""alert: alerts that Alertmanager sends to the agent's webhook, matched by label globs.

The endpoint (agent/signals_component.py) validates each version-4 payload and
merges it with `ingest` into one table of alerts by fingerprint, kept in the
state store under ALERTS_CHECK; every alert check reads that table and judges
the alerts its `match:` selects. Merging by fingerprint makes repeats and an
HA pair's duplicates one alert; a resolved alert is kept for a day, so a stale
duplicate of its firing webhook cannot open it again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, ok, unknown
from core.humanize import ago
from core.status import Status

ALERTS_CHECK = "@alertmanager"  # never a check name (names start with a letter or digit)
ALERTS_KEY = "alerts"
KEEP_RESOLVED = 86400.0
MAX_ALERTS = 10_000
MAX_TEXT = 500  # characters of a summary kept
WARNING_SEVERITIES = frozenset({"warning", "info"})
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class AlertConfig(CheckConfig):
    type: Literal["alert"]
    match: Annotated[dict[str, str], Field(min_length=1)]  # label -> glob

    metric_facts: ClassVar[Mapping[str, str]] = {"alerts_firing": "alerts_firing"}
    # A firing alert is already confirmed by its rule's `for:`: no second result needed.
    type_defaults: ClassVar[Mapping[str, float]] = {"failures_before_alert": 1}

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(fnmatch.fnmatchcase(labels.get(k, ""), g) for k, g in self.match.items())


class WebhookAlert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ""
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    """Alertmanager's webhook body (version 4); fields the agent does not use are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: Annotated[list[WebhookAlert], Field(max_length=MAX_ALERTS)]
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0


def parse_time(text: str) -> float | None:
    """Unix seconds of an RFC 3339 time (nanoseconds allowed); None for Go's zero time."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text[:40]!r}")
    base, fraction, zone = match.groups()
    parsed = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    if parsed.year <= 1:
        return None
    return parsed.astimezone(UTC).timestamp() + float(f"0.{fraction or 0}")


def fingerprint(alert: WebhookAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint[:64]
    text = "\0".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summary_of(annotations: Mapping[str, str]) -> str:
    text = annotations.get("summary") or annotations.get("description") or ""
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def entry_of(alert: WebhookAlert, now: float) -> dict[str, Any]:
    """One alert as the table keeps it; ValueError for a time that does not parse."""
    starts = parse_time(alert.startsAt) or now
    ends = parse_time(alert.endsAt) if alert.endsAt else None
    if alert.status == "resolved" and ends is None:
        ends = now
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "summary": summary_of(alert.annotations),
        "starts_at": starts,
        "ends_at": ends,
        "received_at": now,
    }


def ingest(table: dict[str, Any], entries: Mapping[str, dict[str, Any]], now: float) -> int:
    """Merge validated entries (fingerprint -> entry) into the table; count those that changed."""
    changed = 0
    for fp, entry in entries.items():
        old = table.get(fp)
        stale = (
            old is not None
            and old["status"] == "resolved"
            and entry["status"] == "firing"
            and entry["starts_at"] <= old["starts_at"]
        )
        if stale:
            continue  # an HA peer's late copy of a firing webhook for a resolved alert
        if old is None or _core(old) != _core(entry):
            changed += 1
        table[fp] = entry
    prune(table, now)
    return changed


def _core(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return entry["status"], entry["starts_at"], entry["ends_at"], entry["summary"]


def prune(table: dict[str, Any], now: float) -> None:
    for fp in [fp for fp, e in table.items() if _over(e, now - KEEP_RESOLVED)]:
        del table[fp]
    if len(table) > MAX_ALERTS:
        # Resolved first, then the oldest: the table's size is bounded whatever is sent.
        order = sorted(
            table, key=lambda fp: (table[fp]["status"] == "firing", table[fp]["received_at"])
        )
        for fp in order[: len(table) - MAX_ALERTS]:
            del table[fp]


def _over(entry: Mapping[str, Any], before: float) -> bool:
    ends = entry.get("ends_at")
    return ends is not None and ends < before


def firing(entry: Mapping[str, Any], now: float) -> bool:
    if entry.get("status") != "firing":
        return False
    ends = entry.get("ends_at")
    return ends is None or ends > now


def evaluate(config: AlertConfig, table: Mapping[str, Any], now: float) -> CheckResult:
    matched = [
        e
        for e in table.values()
        if isinstance(e, dict) and firing(e, now) and config.selects(e.get("labels", {}))
    ]
    if not matched:
        return ok("no matching alert firing", alerts_firing=0)
    critical = [e for e in matched if e["labels"].get("severity") not in WARNING_SEVERITIES]
    status = Status.CRITICAL if critical else Status.WARNING
    worst = min(critical or matched, key=lambda e: e["starts_at"])
    name = worst["labels"].get("alertname", "alert")
    where = worst["labels"].get("instance")
    text = f"{name}{f' on {where}' if where else ''} firing since {ago(now, worst['starts_at'])}"
    if worst["summary"]:
        text += f": {worst['summary']}"
    if len(matched) > 1:
        text = f"{len(matched)} alerts firing; {text}"
    return CheckResult(status, text, {"alerts_firing": float(len(matched))})


class AlertCheck:
    def __init__(self, config: AlertConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    async def run(self) -> CheckResult:
        try:
            table = await self.ctx.store.get_state(ALERTS_CHECK, ALERTS_KEY)
        except Exception as exc:  # the store may be broken: say so, do not guess
            return unknown(f"received alerts unreadable: {type(exc).__name__}")
        return evaluate(self.config, table if isinstance(table, dict) else {}, self.ctx.clock())


TYPE = CheckType(AlertConfig, AlertCheck)
