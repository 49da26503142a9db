"""log: writes the notification to the agent's log (a last resort, and for tests)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from alerting.channels.base import ChannelConfig

log = logging.getLogger("vaktpost.notify")


class LogConfig(ChannelConfig):
    type: Literal["log"]


class LogChannel:
    def __init__(self, name: str, config: LogConfig) -> None:
        self.name = name
        self.config = config

    async def send(self, payload: dict[str, Any]) -> None:
        log.warning(
            payload.get("text", "").splitlines()[0] if payload.get("text") else "notification",
            extra={
                "channel": self.name,
                "dedup_key": payload.get("dedup_key"),
                "status": payload.get("status"),
                "department": payload.get("department"),
                "system": payload.get("system"),
                "text": payload.get("text"),
            },
        )

    async def close(self) -> None:
        return None
