"""The local queue of store-outage notices: a JSON file under state_dir.

It lives beside the agent, not in the shared store, because it exists for the
time that store is gone. The file is replaced atomically (write, fsync, rename)
after every change, so a restart of the agent neither loses a queued notice nor
opens a second outage: `outage` says the open outage's notice is already queued.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from alerting.plan import STORE_CHECK
from core.humanize import duration, rfc3339
from core.i18n import LANGUAGES
from core.i18n import text as i18n_text

log = logging.getLogger("vaktpost.store_outage")
QUEUE_FILE = "store-outage.json"
VERSION = 1
Kind = Literal["unreachable", "back"]


@dataclass
class Delivery:
    target: str  # a channel, or "channel#person" for a person's channel
    state: str = "pending"  # pending | delivered | failed | skipped
    attempts: int = 0
    next_at: float = 0.0
    error: str = ""
    fell_back: bool = False  # its fallbacks were added (once)


@dataclass
class Notice:
    kind: Kind
    created_at: float
    payload: dict[str, Any]
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(d.state != "pending" for d in self.deliveries)

    def targets(self) -> set[str]:
        return {d.target for d in self.deliveries}


class NoticeQueue:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / QUEUE_FILE
        # When the open outage began; its "unreachable" notice is queued (or sent).
        self.outage: float | None = None
        self.notices: list[Notice] = []

    def load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            data = json.loads(text)
            self.outage = None if data["outage"] is None else float(data["outage"])
            self.notices = [
                Notice(
                    n["kind"],
                    float(n["created_at"]),
                    dict(n["payload"]),
                    [Delivery(**d) for d in n["deliveries"]],
                )
                for n in data["notices"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            # A half-written file cannot happen (rename); a hand-edited one can.
            aside = self.path.with_suffix(".damaged")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            log.error(
                "store outage queue unreadable; moved aside, starting empty",
                extra={"file": str(self.path), "moved_to": str(aside), "error": str(exc)},
            )
            self.outage, self.notices = None, []

    def save(self) -> None:
        data = {
            "version": VERSION,
            "outage": self.outage,
            "notices": [asdict(n) for n in self.notices],
        }
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)

    def pending(self) -> int:
        return sum(1 for n in self.notices for d in n.deliveries if d.state == "pending")

    def due(self, now: float) -> list[tuple[Notice, Delivery]]:
        """Deliveries to try now: per target only the oldest pending one, so "back"
        never arrives before the "unreachable" notice it follows."""
        out: list[tuple[Notice, Delivery]] = []
        waiting: set[str] = set()
        for notice in self.notices:
            for d in notice.deliveries:
                if d.state != "pending" or d.target in waiting:
                    continue
                waiting.add(d.target)
                if d.next_at <= now:
                    out.append((notice, d))
        return out

    def prune(self) -> None:
        self.notices = [n for n in self.notices if not n.done]


_TEXT_KEY = {"unreachable": "store_unreachable", "back": "store_back"}


def notice_payload(
    kind: Kind,
    *,
    agent: str,
    where: str,
    error: str,
    started: float,
    now: float,
    language: str,
    timezone: str,
) -> dict[str, Any]:
    """The notification payload's fields (docs/notifications.md), for no incident:
    the store's incidents are in the store. `store_outage` tells receivers apart."""
    since = datetime.fromtimestamp(started, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")
    text = i18n_text(
        language if language in LANGUAGES else "en",
        _TEXT_KEY[kind],
        agent=agent,
        where=where,
        since=since,
        error=error or "-",
        down=duration(now - started),
    )
    resolved = kind == "back"
    verdict = "state store writes" if resolved else f"state store cannot write: {error}"
    key = f"{agent}/-/{STORE_CHECK}/outage-{int(started)}/{kind}"
    return {
        "version": 1,
        "dedup_key": key,
        "incident_id": 0,
        "status": "resolved" if resolved else "critical",
        "kind": "resolved" if resolved else "firing",
        "step": 0,
        "department": None,
        "department_name": None,
        "system": STORE_CHECK,
        "system_name": STORE_CHECK,
        "checks": [
            {
                "name": STORE_CHECK,
                "status": "ok" if resolved else "critical",
                "message": verdict,
            }
        ],
        "started_at": rfc3339(started),
        "resolved_at": rfc3339(now) if resolved else None,
        "downtime_seconds": round(max(0.0, now - started), 3),
        "rto_seconds": None,
        "mtpd_seconds": None,
        "rto_remaining_seconds": None,
        "mtpd_remaining_seconds": None,
        "fallback": "",
        "impacted": [],
        "caused_by": None,
        "grouped": [key],
        "ack_code": None,
        "ack_url": None,
        "acknowledged_by": None,
        "acknowledged_via": None,
        "ack_comment": "",
        "message": error,
        "agent": agent,
        "created_at": rfc3339(now),
        "text": text,
        "store_outage": kind,
    }
