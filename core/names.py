"""Names of checks, systems and channels, and regexes checked when the config loads."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return value


def valid_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regex {value!r}: {exc}") from None
    return value


# A Python regex, checked when the config loads.
Regex = Annotated[str, AfterValidator(valid_regex)]

# Names of checks, channels, departments and systems: safe in URLs, labels and dedup keys.
Name = Annotated[str, AfterValidator(check_name)]
