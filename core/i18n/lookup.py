"""The tables by language, and the one lookup every page and message uses."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.i18n.en import TEXT as EN
from core.i18n.sv import TEXT as SV

# Read-only: a page that changed a word would change it for every later page.
TABLES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"sv": MappingProxyType(SV), "en": MappingProxyType(EN)}
)
LANGUAGES = tuple(TABLES)
DEFAULT = "sv"  # agent.language's default


def words(language: str) -> Mapping[str, str]:
    """The whole table of `language` (templates index it); the default for one not known."""
    return TABLES.get(language, TABLES[DEFAULT])


def text(language: str, key: str, /, **params: object) -> str:
    """One text in `language`, its {placeholders} filled from `params`."""
    template = words(language)[key]
    return template.format(**params) if params else template


def upper_first(phrase: str) -> str:
    """'tidig varning' -> 'Tidig varning': a table holds a phrase once, a heading
    raises its first letter (str.capitalize would lower the rest, 'RTO' -> 'Rto')."""
    return phrase[:1].upper() + phrase[1:]
