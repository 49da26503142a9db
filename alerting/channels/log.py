"""log: writes the notification to the agent's log (a last resort, and for tests)."""

from __future__ import annotations

from typing import Literal

from alerting.channels.base import ChannelConfig


class LogConfig(ChannelConfig):
    type: Literal["log"]
