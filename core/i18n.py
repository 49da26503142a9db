"""Readiness reasons in the reader's language.

The JSON of `vaktpost readiness` and `/api/v1/departments` keeps its reasons in
English (scripts match on them; the contract says keys may be added, none
renamed); pages and tables for people show them in `agent.language`. Each
pattern below is one reason that agent/readiness.py can give; a reason no
pattern knows is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NOUNS_SV = {
    "file": "fil",
    "snapshot": "ögonblicksbild",
    "archive": "arkiv",
    "successful run": "lyckad körning",
}


def _ago_sv(text: str) -> str:
    """'5 h ago' -> 'för 5 h sedan' (inside a reason)."""
    return re.sub(r"(\d[\w .]*?) ago", r"för \1 sedan", text)


def _noun(word: str) -> str:
    return _NOUNS_SV.get(word, word)


_SV: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"^last checksum verification failed \((.+)\)$"),
        lambda m: f"senaste kontrollsummeverifieringen misslyckades ({_ago_sv(m[1])})",
    ),
    (re.compile(r"^checksum never verified$"), lambda m: "kontrollsumman har aldrig verifierats"),
    (
        re.compile(r"^last repository check failed \((.+)\)$"),
        lambda m: f"senaste förrådskontrollen misslyckades ({_ago_sv(m[1])})",
    ),
    (
        re.compile(r"^repository never checked( \(check_every is off\))?$"),
        lambda m: "förrådet har aldrig kontrollerats" + (" (check_every är av)" if m[1] else ""),
    ),
    (
        re.compile(
            r"^last passed repository check (.+) ago, must be within (.+) \(2 x check_every\)$"
        ),
        lambda m: (
            f"senaste godkända förrådskontroll för {m[1]} sedan, ska vara inom {m[2]}"
            " (2 × check_every)"
        ),
    ),
    (
        re.compile(r"^last restore test failed \((.+)\)$"),
        lambda m: f"senaste återläsningstestet misslyckades ({_ago_sv(m[1])})",
    ),
    (re.compile(r"^restore never tested$"), lambda m: "återläsning aldrig testad"),
    (
        re.compile(r"^last successful restore test (.+) ago, limit (.+)$"),
        lambda m: f"senaste lyckade återläsningstest för {m[1]} sedan, gräns {m[2]}",
    ),
    (
        re.compile(r"^newest file (.+), below min_size (.+)$"),
        lambda m: f"nyaste filen {m[1]}, under min_size {m[2]}",
    ),
    (
        re.compile(r"^newest file shrank (.+) against the previous one, limit (.+)$"),
        lambda m: f"nyaste filen krympte {m[1]} mot den förra, gräns {m[2]}",
    ),
    (re.compile(r"^check (\S+) is not configured$"), lambda m: f"kontrollen {m[1]} finns inte"),
    (
        re.compile(r"^check (\S+) is a (\S+) check, not a backup check$"),
        lambda m: f"kontrollen {m[1]} är en {m[2]}-kontroll, ingen säkerhetskopiekontroll",
    ),
    (
        re.compile(r"^no result recorded yet: the check has not run$"),
        lambda m: "inget resultat ännu: kontrollen har inte körts",
    ),
    (re.compile(r"^could not be checked: (.*)$"), lambda m: f"kunde inte kontrolleras: {m[1]}"),
    (
        re.compile(r"^no (file|snapshot|archive|successful run) found: (.*)$"),
        lambda m: f"ingen {_noun(m[1])} hittad: {m[2]}",
    ),
    (
        re.compile(r"^newest (file|snapshot|archive|successful run) (.+) old, RPO (.+)$"),
        lambda m: f"nyaste {_noun(m[1])} är {m[2]} gammal, RPO {m[3]}",
    ),
]


def reason(text: str, language: str) -> str:
    """One readiness reason for people reading `language` ('CHECK: reason' kept)."""
    if language != "sv":
        return text
    prefix, sep, rest = text.partition(": ")
    # "db-backup: newest snapshot 2 d old, RPO 1 d" — translate the part after the check.
    for candidate, keep in ((text, ""), (rest, prefix + sep) if sep else (text, "")):
        for pattern, render in _SV:
            match = pattern.match(candidate)
            if match:
                return keep + render(match)
    return text
