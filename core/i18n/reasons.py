"""Readiness reasons in the reader's language.

The JSON of `vaktpost readiness` and `/api/v1/departments` keeps its reasons in
English (scripts match on them; the contract says keys may be added, none
renamed); pages and tables for people show them in `agent.language`.
agent/readiness.py writes each reason from an English `reason_*` template; this
module reads the template's placeholders back out of the English sentence and
fills the same template of the reader's language. A reason no template matches
is shown as it is.
"""

from __future__ import annotations

import re
import string
from functools import cache

from core.i18n.lookup import TABLES, text

_ENGLISH = TABLES["en"]
_NOUN = "noun_"


def _template_pattern(template: str, params: dict[str, str]) -> re.Pattern[str]:
    parts = ["^"]
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P<{field}>{params.get(field, '.*?')})")
    return re.compile("".join(parts) + "$")


@cache
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    # {noun} is one of the backup nouns the check types declare, nothing else.
    nouns = "|".join(re.escape(v) for k, v in _ENGLISH.items() if k.startswith(_NOUN))
    return [
        (key, _template_pattern(template, {"noun": nouns}))
        for key, template in _ENGLISH.items()
        if key.startswith("reason_")
    ]


@cache
def _ago() -> re.Pattern[str]:
    return _template_pattern(_ENGLISH["ago"], {})


def _param(name: str, value: str, language: str) -> str:
    if name == "noun":
        key = _NOUN + value.replace(" ", "_")
        return text(language, key)
    # "(5 h ago)" in a reason: the same time, said the reader's way.
    ago = _ago().match(value)
    if name == "when" and ago:
        return text(language, "ago", age=ago["age"])
    return value


def _translate(sentence: str, language: str) -> str | None:
    for key, pattern in _patterns():
        match = pattern.match(sentence)
        if match:
            params = {k: _param(k, v, language) for k, v in match.groupdict().items()}
            return text(language, key, **params)
    return None


def reason(sentence: str, language: str) -> str:
    """One readiness reason for people reading `language` ('CHECK: reason' kept)."""
    if language == "en" or language not in TABLES:
        return sentence
    prefix, sep, rest = sentence.partition(": ")
    # "db-backup: newest snapshot 2 d old, RPO 1 d": translate the part after the check.
    whole = _translate(sentence, language)
    if whole is not None:
        return whole
    if sep:
        part = _translate(rest, language)
        if part is not None:
            return prefix + sep + part
    return sentence
