"""Ack codes: the short number an SMS reply names ("K 4711") and who may send it.

Pure. A code is derived from the agent and the incident id (so a drill or a
restart gives the same code) and moved on until no open incident holds it.
Incident codes have four digits, drill codes five: the two never collide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping

from agent.people_config import Person

INCIDENT_DIGITS = 4
DRILL_DIGITS = 5
# "K 4711", "k4711", "K-4711", "4711", "kvittera 4711", "ack 4711 on my way".
_REPLY = re.compile(r"^\s*(?:[A-Za-zÅÄÖåäö]+[\s:.-]*)?(\d{4,5})\b(.*)$", re.DOTALL)
DEFAULT_COUNTRY = "46"  # Sweden: a national number 070-123 45 67 is +46 70 123 45 67


def assign_code(seed: str, taken: Collection[str], digits: int = INCIDENT_DIGITS) -> str:
    """A code of `digits` digits (no leading zero) not in `taken`."""
    low, span = 10 ** (digits - 1), 9 * 10 ** (digits - 1)
    start = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % span
    for step in range(span):
        code = str(low + (start + step) % span)
        if code not in taken:
            return code
    raise RuntimeError(f"every {digits}-digit ack code is in use")


def parse_reply(text: str) -> tuple[str, str] | None:
    """(code, the rest as a comment) of a reply, or None when it names no code."""
    match = _REPLY.match(text or "")
    if match is None:
        return None
    return match.group(1), match.group(2).strip(" \t\r\n:.-")


def e164(number: str, country: str = DEFAULT_COUNTRY) -> str | None:
    """+CCNNNN... of a phone number as people write it, or None when it is not one.

    070-123 45 67, 0701234567, 0046701234567 and +46 70 123 45 67 are one number.
    """
    text = (number or "").strip()
    plus = text.startswith("+")
    digits = re.sub(r"[\s().-]", "", text.lstrip("+"))
    if not digits.isascii() or not digits.isdigit():
        return None
    if plus:
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    elif digits.startswith("0"):
        full = country + digits[1:]
    else:
        full = digits  # already international, without the plus (gammu gives +46...)
    if not 6 <= len(full) <= 15:
        return None
    return "+" + full


def person_by_phone(people: Mapping[str, Person], number: str) -> str | None:
    """The id of the person whose phone is `number` (compared in E.164)."""
    wanted = e164(number)
    if wanted is None:
        return None
    for pid, person in people.items():
        if person.phone and e164(person.phone) == wanted:
            return pid
    return None
