"""The readiness report for people: a text table, and printable HTML (no JavaScript)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from core.humanize import duration
from core.i18n import reason, text, upper_first, words

Words = Mapping[str, str]
# The table's lowercase words for the two everyday states; a breach reads as on the console.
_STATE = {
    "normal": "readiness_normal",
    "degraded": "readiness_degraded",
    "rto_breached": "state_rto_breached",
    "mtpd_breached": "state_mtpd_breached",
}


def _yes_no(value: bool | None, t: Words) -> str:
    return t["unknown"] if value is None else t["yes"] if value else t["no"]


def _state(dept: dict[str, Any], t: Words) -> str:
    """The department's continuity state in the page's language."""
    state = str(dept["state"])
    return t[_STATE[state]] if state in _STATE else state


def _verdict(dept: dict[str, Any], t: Words) -> str:
    return t["ready"].upper() if dept["ready"] else t["readiness_not_ready"]


def _head(t: Words, *keys: str) -> list[str]:
    return [upper_first(t[k]) for k in keys]


def _age(backup: dict[str, Any]) -> str:
    age = backup["age_seconds"]
    return "-" if age is None else duration(age)


def table(report: dict[str, Any], lang: str = "en") -> str:
    t = words(lang)
    lines = [f"{t['readiness_title']} – {t['readiness_generated']} {report['generated_at']}"]
    head = _head(t, "system", "readiness_up", "ready", "backup", "age", "rpo")
    head += _head(t, "readiness_verified", "readiness_restored")
    for dept in report["departments"]:
        state = f"[{t['readiness_state']}: {_state(dept, t)}]"
        lines += ["", f"{dept['name']} ({dept['id']}): {_verdict(dept, t)}  {state}"]
        rows = [head]
        for system in dept["systems"]:
            first = [system["name"], _yes_no(system["up"], t), _yes_no(system["ready"], t)]
            if not system["backups"]:
                rows.append([*first, t["readiness_none"], "", "", "", ""])
            for b in system["backups"]:
                rows.append(
                    [
                        *first,
                        b["check"],
                        _age(b),
                        duration(b["rpo_seconds"]),
                        b["verified_at"] or t["never"],
                        b["restore_tested_at"]
                        or ("-" if b["type"] == "backup_files" else t["never"]),
                    ]
                )
                first = ["", "", ""]
        lines += _columns(rows)
        for system in dept["systems"]:
            lines += [f"    ! {system['name']}: {reason(r, lang)}" for r in system["reasons"]]
    return "\n".join(lines) + "\n"


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _cell(text: str, ok: bool | None = None) -> str:
    cls = "" if ok is None else f' class="{"ok" if ok else "bad"}"'
    return f"<td{cls}>{html.escape(text)}</td>"


def _reasons(reasons: list[str], lang: str) -> str:
    items = "".join(f"<li>{html.escape(reason(r, lang))}</li>" for r in reasons)
    return f"<td><ul>{items}</ul></td>" if items else "<td></td>"


def department_html(dept: dict[str, Any], lang: str) -> str:
    t = words(lang)
    rows = []
    for system in dept["systems"]:
        backups = system["backups"] or [None]
        for b in backups:
            cells = [
                _cell(system["name"]),
                _cell(_yes_no(system["up"], t), system["up"]),
                _cell(_yes_no(system["ready"], t), system["ready"]),
            ]
            if b is None:
                cells.append(f'<td colspan="5">{html.escape(t["readiness_none"])}</td>')
            else:
                cells += [
                    _cell(b["check"]),
                    _cell(f"{_age(b)} / {duration(b['rpo_seconds'])}", b["ready"]),
                    _cell(b["verified_at"] or t["never"]),
                    _cell(b["restore_tested_at"] or "-"),
                    _reasons(b["reasons"], lang),
                ]
            up = {True: "true", False: "false", None: "unknown"}[system["up"]]
            attrs = f'data-system="{html.escape(system["id"])}" data-up="{up}"'
            rows.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    columns = _head(t, "system", "readiness_up", "ready", "backup", "age")
    columns += _head(t, "readiness_verified", "readiness_restored", "readiness_reasons")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns)
    return (
        f'<section class="dept"><h2>{html.escape(dept["name"])} – '
        f'<span class="{"ok" if dept["ready"] else "bad"}">{_verdict(dept, t)}</span></h2>'
        f'<p data-state="{html.escape(dept["state"])}">'
        f"{html.escape(t['readiness_state'])}: {html.escape(_state(dept, t))}</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table></section>"
    )


STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}"
    "td,th{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}"
    ".ok{color:#1b7f3b;font-weight:bold}.bad{color:#b00020;font-weight:bold}"
    "ul{margin:0;padding-left:1.2em}"
    "@media print{.dept{page-break-after:always}body{margin:0}}"
)


def page(report: dict[str, Any], lang: str = "en") -> str:
    """A printable page, one section (and printed page) per department."""
    t = words(lang)
    body = "".join(department_html(d, lang) for d in report["departments"])
    title = html.escape(t["readiness_title"])
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head>"
        f"<body><h1>{title}</h1>"
        f"<p>{html.escape(t['readiness_generated'])}: {html.escape(report['generated_at'])}</p>"
        f"{body}</body></html>\n"
    )


def section(report: dict[str, Any], lang: str = "en") -> str:
    """The status-page part: departments with backups, a line each, reasons inline."""
    parts = [f"<h2>{html.escape(text(lang, 'readiness_title'))}</h2>"]
    for dept in report["departments"]:
        parts.append(department_html(dept, lang).replace('class="dept"', 'class="dept-inline"'))
    return "".join(parts)
