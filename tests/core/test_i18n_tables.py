"""One table per language (core/i18n/sv.py, core/i18n/en.py): the same keys and the
same placeholders in each, every key used, no phrase twice, and no text for people in
another language anywhere else in the code (issue 10: "one i18n table per language,
not four")."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from alerting.model import Incident
from alerting.significant import STAGES
from alerting.views import DEPARTMENT_STATES
from checks.registry import CHECK_TYPES
from core.i18n import LANGUAGES, TABLES, reason, text, upper_first, words

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "checks", "alerting", "agent")
TABLE_FILES = {ROOT / "core" / "i18n" / f"{lang}.py" for lang in LANGUAGES}
TEMPLATES = sorted((ROOT / "agent" / "web" / "templates").glob("*.j2"))
ENGLISH = TABLES["en"]


def _statuses() -> set[str]:
    incident = Incident(1, None, "s", 0.0)
    seen = {incident.status}
    incident.acked_at = 1.0
    seen.add(incident.status)
    incident.resolved_at = 2.0
    return seen | {incident.status}


# Keys looked up by a prefix and a value ("state_" ~ dept.state): each family holds
# exactly one key per value the code can give, no more (dead) and no fewer (a KeyError).
FAMILIES: dict[str, set[str]] = {
    "state_": set(DEPARTMENT_STATES),
    "status_": _statuses(),
    "stage_": set(STAGES),
    "noun_": {
        t.config.backup_noun.replace(" ", "_") for t in CHECK_TYPES.values() if t.config.is_backup
    },
}


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return [p for p in files if p not in TABLE_FILES]


def test_every_key_is_in_every_language() -> None:
    for lang in LANGUAGES:
        missing = set(ENGLISH) - set(TABLES[lang])
        extra = set(TABLES[lang]) - set(ENGLISH)
        assert not missing and not extra, (lang, sorted(missing), sorted(extra))


def test_every_key_has_the_same_placeholders_in_every_language() -> None:
    differ = [
        (lang, key)
        for lang in LANGUAGES
        for key, template in TABLES[lang].items()
        if _placeholders(template) != _placeholders(ENGLISH[key])
    ]
    assert differ == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_formats(lang: str) -> None:
    for key, template in TABLES[lang].items():
        params = {name: "X" for name in _placeholders(template)}
        assert "{" not in text(lang, key, **params).replace('{"', ""), key


def test_no_phrase_is_twice_in_the_tables() -> None:
    """A heading and the same words mid-sentence are one key (upper_first makes the
    heading), so 'ålder' and 'Ålder' count as the same phrase."""
    seen: dict[tuple[str, ...], str] = {}
    twice = []
    for key in ENGLISH:
        phrase = tuple(TABLES[lang][key].casefold() for lang in LANGUAGES)
        if phrase in seen:
            twice.append((seen[phrase], key))
        seen.setdefault(phrase, key)
    assert twice == []


def test_every_key_is_used() -> None:
    """A key counts as used where a module that reads the tables names it, or a template
    does; keys looked up by a prefix must match the values the code gives exactly."""
    named: set[str] = set()
    for path in _sources():
        source = path.read_text(encoding="utf-8")
        if "core.i18n" in source:
            named |= set(re.findall(r"[\"']([a-z][a-z0-9_]*)[\"']", source))
    for path in TEMPLATES:
        source = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"\bt\.([a-z][a-z0-9_]*)", source))
        named |= set(re.findall(r"\bt\[\"([a-z][a-z0-9_]*)\"\]", source))
    for prefix, values in FAMILIES.items():
        family = {k for k in ENGLISH if k.startswith(prefix)}
        assert family == {prefix + v for v in values}, prefix
    in_family = {k for k in ENGLISH if k.startswith(tuple(FAMILIES))}
    assert sorted(set(ENGLISH) - in_family - named) == []


def test_each_noun_key_holds_the_noun_the_check_type_declares() -> None:
    for key, noun in ENGLISH.items():
        if key.startswith("noun_"):
            assert key == "noun_" + noun.replace(" ", "_")


def _string_literals(tree: ast.AST) -> list[ast.Constant]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


# Not text for people: the letters a reply "K 4711" may start with ("Kvittera 4711").
SWEDISH_LETTERS_ALLOWED = {("alerting/ackcodes.py", "_REPLY")}


def test_no_text_in_another_language_outside_the_tables() -> None:
    """Swedish words and {"sv": ..., "en": ...} dicts anywhere else mean a fifth table."""
    found = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("core/i18n/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = {
            id(value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name) and (rel, target.id) in SWEDISH_LETTERS_ALLOWED
            for value in ast.walk(node.value)
        }
        for literal in _string_literals(tree):
            words_in = str(literal.value)
            if re.search("[åäöÅÄÖ]", words_in) and id(literal) not in allowed:
                found.append(f"{rel}:{literal.lineno}: {words_in[:40]!r}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if set(LANGUAGES) <= keys:
                    found.append(f"{rel}:{node.lineno}: a dict keyed by language")
    for path in TEMPLATES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search("[åäöÅÄÖ]", line):
                found.append(f"{path.name}:{n}: {line.strip()[:40]!r}")
    assert found == []


def _sample(name: str, noun: str) -> tuple[str, str]:
    """A value for the placeholder as agent/readiness.py writes it, and in Swedish."""
    if name == "when":
        return "5 h ago", "för 5 h sedan"
    if name == "noun":
        return noun, text("sv", "noun_" + noun.replace(" ", "_"))
    return f"<{name}>", f"<{name}>"


@pytest.mark.parametrize("key", [k for k in ENGLISH if k.startswith("reason_")])
def test_every_reason_reads_back_into_its_own_swedish_template(key: str) -> None:
    """A reason is matched against every English template, first match wins: each must
    come back as itself, for every backup noun (no template shadows another)."""
    nouns = [ENGLISH[k] for k in ENGLISH if k.startswith("noun_")]
    for noun in nouns if "noun" in _placeholders(ENGLISH[key]) else nouns[:1]:
        pairs = {name: _sample(name, noun) for name in _placeholders(ENGLISH[key])}
        english = text("en", key, **{n: en for n, (en, _) in pairs.items()})
        swedish = text("sv", key, **{n: sv for n, (_, sv) in pairs.items()})
        assert reason(english, "sv") == swedish
        assert reason(f"db-backup: {english}", "sv") == f"db-backup: {swedish}"
        assert reason(english, "en") == english


def test_an_unknown_reason_and_an_unknown_noun_stay_as_they_are() -> None:
    assert reason("the disk is on fire", "sv") == "the disk is on fire"
    assert reason("no tape found: drive empty", "sv") == "no tape found: drive empty"


def test_the_tables_cannot_be_changed_by_a_page() -> None:
    with pytest.raises(TypeError):
        words("sv")["ack"] = "x"  # type: ignore[index]


def test_upper_first_keeps_the_rest() -> None:
    assert upper_first("tidig varning") == "Tidig varning"
    assert upper_first("RTO överskriden") == "RTO överskriden"
    assert upper_first("") == ""


MONTH = {
    "month": "2026-01",
    "agent": "a",
    "timezone": "Europe/Stockholm",
    "period": {"start": "2026-01-01", "end": "2026-02-01"},
    "departments": [
        {
            "name": "Socialtjänsten",
            "systems": [
                {"name": "Treserva", "availability": 1.0, "downtime_seconds": 0,
                 "maintenance_seconds": 0, "rto_seconds": 3600, "mtpd_seconds": None,
                 "incidents": 0, "backups": [
                     {"check": "db", "rpo_seconds": 86400, "ready_share": 1.0}]}
            ],
            "incidents": [],
        }
    ],
    "drills": [],
}  # fmt: skip


@pytest.mark.parametrize(
    ("lang", "words_in"),
    [("en", ["Availability", "Ready", "Channel drills", "None."]),
     ("sv", ["Tillgänglighet", "Redo", "Larmövningar", "Inga."])],
)  # fmt: skip
def test_the_monthly_report_reads_its_words_from_the_tables(lang: str, words_in: list[str]) -> None:
    from agent import report_render

    for rendered in (report_render.markdown(MONTH, lang), report_render.html_page(MONTH, lang)):
        assert all(w in rendered for w in words_in), rendered
    assert report_render.markdown(MONTH) == report_render.markdown(MONTH, "en")
