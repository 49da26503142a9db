"""The one place that lists channel types: config model and sender, per YAML `type:`."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from alerting.channels import alertmanager, apprise, command, log, webhook
from alerting.channels.base import ChannelConfig
from alerting.channels.interface import Channel

_TYPES: list[tuple[type[ChannelConfig], Callable[[str, Any], Channel]]] = [
    (apprise.AppriseConfig, apprise.AppriseChannel),
    (webhook.WebhookConfig, webhook.WebhookChannel),
    (command.CommandChannelConfig, command.CommandChannel),
    (alertmanager.AlertmanagerConfig, alertmanager.AlertmanagerChannel),
    (log.LogConfig, log.LogChannel),
]


def _type_name(model: type[ChannelConfig]) -> str:
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    return str(literal)


CHANNEL_CONFIGS: dict[str, type[ChannelConfig]] = {_type_name(m): m for m, _ in _TYPES}
_SENDERS: dict[str, Callable[[str, Any], Channel]] = {_type_name(m): s for m, s in _TYPES}


def build_channel(name: str, config: ChannelConfig) -> Channel:
    return _SENDERS[config.type](name, config)
