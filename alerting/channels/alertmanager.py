"""alertmanager: POST /api/v2/alerts to every URL; Alertmanager dedups across a fleet.

Firing alerts carry no endsAt, so Alertmanager ends them after its
resolve_timeout unless re-posted: the alerting component re-posts every
`repost_interval`. A resolved notice posts endsAt = the recovery time.
Delivered when at least one URL accepted it (an HA pair gossips the rest).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig
from alerting.channels.http import HttpPoster
from alerting.channels.interface import DeliveryError, PermanentError, RetryableError
from core.durations import Duration

ALERTNAME = "VaktpostIncident"
# A drill (`vaktpost drill --send-to`) must not merge with, or be routed as, a real alert.
DRILL_ALERTNAME = "VaktpostDrill"


class AlertmanagerConfig(ChannelConfig):
    type: Literal["alertmanager"]
    urls: Annotated[tuple[str, ...], Field(min_length=1)]
    # Alertmanager expires alerts not re-posted within resolve_timeout.
    repost_interval: Annotated[Duration, Field(gt=0)] = 60.0

    def refresh_every(self) -> float | None:
        return self.repost_interval


def to_alert(payload: dict[str, Any]) -> dict[str, Any]:
    text = payload.get("text") or ""
    alert: dict[str, Any] = {
        "labels": {
            "alertname": ALERTNAME,
            "department": payload.get("department") or "none",
            "system": payload["system"],
            "severity": "critical",
            "agent": payload["agent"],
        },
        "annotations": {
            "summary": text.splitlines()[0] if text else payload["system"],
            "description": text,
            "fallback": payload.get("fallback") or "",
            "dedup_key": payload["dedup_key"],
            "incident_id": str(payload["incident_id"]),
            "status": payload["status"],
        },
        "startsAt": payload["started_at"],
    }
    if payload.get("drill"):
        alert["labels"]["alertname"] = DRILL_ALERTNAME
        alert["labels"]["drill"] = "true"
    if payload["status"] == "resolved":
        alert["endsAt"] = payload.get("resolved_at") or payload["created_at"]
    return alert


class AlertmanagerChannel:
    def __init__(self, name: str, config: AlertmanagerConfig) -> None:
        self.name = name
        self.config = config
        self.http = HttpPoster(config.timeout)

    async def send(self, payload: dict[str, Any]) -> None:
        body = json.dumps([to_alert(payload)]).encode()
        headers = {"Content-Type": "application/json"}
        results = await asyncio.gather(
            *(
                self.http.post(url.rstrip("/") + "/api/v2/alerts", body, headers)
                for url in self.config.urls
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) < len(results):
            return
        for error in errors:
            if not isinstance(error, DeliveryError):
                raise error
        text = "; ".join(str(e) for e in errors)
        if any(isinstance(e, RetryableError) for e in errors):
            raise RetryableError(text)
        raise PermanentError(text)

    async def close(self) -> None:
        await self.http.close()
