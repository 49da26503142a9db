"""`{phone}`, `{email}`, `{name}` in a channel's argv or URLs, filled from the person
a notification is for (payload["recipient"], set by the engine for person:/rotation:)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from alerting.channels.interface import PermanentError

PLACEHOLDERS = ("phone", "email", "name")
_PLACEHOLDER = re.compile(r"\{(phone|email|name)\}")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def fill(
    text: str, payload: dict[str, Any], channel: str, quote: Callable[[str], str] = str
) -> str:
    """The text with the recipient's details; PermanentError when one is missing
    (a channel with placeholders used for no person, or a person without a phone)."""
    if not placeholders(text):
        return text
    person = payload.get("recipient") or {}

    def one(match: re.Match[str]) -> str:
        value = person.get(match.group(1))
        if not value:
            need = "{" + match.group(1) + "}"
            if not person:
                raise PermanentError(
                    f"channel {channel} needs {need}: notify it as person:NAME or rotation:NAME"
                )
            raise PermanentError(f"channel {channel} needs {need}, {person.get('id')} has none")
        return quote(str(value))

    return _PLACEHOLDER.sub(one, text)
