"""webhook: the JSON payload, signed with HMAC-SHA256 over the body."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig


class WebhookConfig(ChannelConfig):
    type: Literal["webhook"]
    url: str
    hmac_secret_file: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
