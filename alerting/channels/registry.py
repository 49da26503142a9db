"""The one place that lists channel types. The config union is built from it."""

from __future__ import annotations

import typing

from alerting.channels import alertmanager, apprise, command, log, webhook
from alerting.channels.base import ChannelConfig

_CONFIGS: list[type[ChannelConfig]] = [
    apprise.AppriseConfig,
    webhook.WebhookConfig,
    command.CommandChannelConfig,
    alertmanager.AlertmanagerConfig,
    log.LogConfig,
]


def _type_name(model: type[ChannelConfig]) -> str:
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    return str(literal)


CHANNEL_CONFIGS: dict[str, type[ChannelConfig]] = {_type_name(m): m for m in _CONFIGS}
