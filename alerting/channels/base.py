"""What every channel config has."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from core.durations import Duration
from core.placement import AgentGlob


class ChannelConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    # Skipped for its fallbacks while the uplink (`link` checks) is down.
    requires_internet: bool = False
    # Notified for checks in no department when agent.default_escalation is unset.
    default: bool = False
    fallback: tuple[str, ...] = ()
    # Agent-name globs of a fleet that may deliver it (empty: any): the host with the modem.
    run_on: tuple[AgentGlob, ...] = ()
    timeout: Annotated[Duration, Field(gt=0)] = 10.0
    concurrency: Annotated[int, Field(ge=1, le=64)] = 2

    def refresh_every(self) -> float | None:
        """Seconds between re-sends of an open incident's state; None: never.

        A capability of the channel type (Alertmanager forgets alerts that are not
        posted again); the engine emits the re-sends and the outbox delivers them.
        """
        return None
