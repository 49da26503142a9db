"""command: run argv with the JSON payload on stdin (e.g. a local GSM modem tool)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig


class CommandChannelConfig(ChannelConfig):
    type: Literal["command"]
    argv: Annotated[tuple[str, ...], Field(min_length=1)]
