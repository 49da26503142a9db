"""alertmanager: POST /api/v2/alerts to every URL; Alertmanager dedups across a fleet."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig
from checks.base import Duration


class AlertmanagerConfig(ChannelConfig):
    type: Literal["alertmanager"]
    urls: Annotated[tuple[str, ...], Field(min_length=1)]
    # Alertmanager expires alerts not re-posted within resolve_timeout.
    repost_interval: Annotated[Duration, Field(gt=0)] = 60.0
