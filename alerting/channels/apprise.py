"""apprise: e-mail, SMS services, Teams, Slack, ntfy, Matrix ... through apprise URLs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig


class AppriseConfig(ChannelConfig):
    type: Literal["apprise"]
    urls: Annotated[tuple[str, ...], Field(min_length=1)]
