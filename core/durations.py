"""Durations as the config writes them (`500ms`, `30s`, `2h`, `1w`) and as people read them."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


# Longest duration anywhere in a config (RPO, MTPD, a silence ...): ten years. Past it
# only typos and attacks remain, and datetime arithmetic overflows far beyond it.
MAX_DURATION = 3650 * 86400.0
MAX_INTERVAL = 7 * 86400.0  # check interval: a weekly probe is the slowest sensible
MAX_TIMEOUT = 86400.0  # check timeout: a full `restic check --read-data` may take hours


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `30s`, `5m`, `2h`, `1d`, `1w` or combinations like `1h30m`.

    Error texts never repeat the value: a secret pasted into the wrong key must not
    be printed by `validate`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("invalid duration: use a number with a unit, e.g. 30s")
    if isinstance(value, str):
        total = _parse_duration_text(value)
    else:
        try:
            total = float(value)
        except OverflowError:
            total = math.inf
    if math.isnan(total):
        raise ValueError("invalid duration: not a number")
    if total < 0:
        raise ValueError("invalid duration: must not be negative")
    if total > MAX_DURATION:
        raise ValueError(f"duration too long: at most {format_duration(MAX_DURATION)}")
    return total


def _parse_duration_text(value: str) -> float:
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            "invalid duration: use a number with a unit ms, s, m, h, d or w (e.g. 30s)"
        )
    return total


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


# Seconds as float inside; serialised back as a duration string. Always finite.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def at_most(limit: float) -> AfterValidator:
    def check(seconds: float) -> float:
        if seconds > limit:
            raise ValueError(f"too long: at most {format_duration(limit)}")
        return seconds

    return AfterValidator(check)


# How often a check runs and how long one probe may take (docs/config.md "Limits").
Interval = Annotated[Duration, Field(gt=0), at_most(MAX_INTERVAL)]
Timeout = Annotated[Duration, Field(gt=0), at_most(MAX_TIMEOUT)]
