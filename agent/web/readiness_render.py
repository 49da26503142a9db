"""The readiness report for people: a text table, and printable HTML (no JavaScript)."""

from __future__ import annotations

import html
from typing import Any

from core.humanize import duration
from core.i18n import reason

_TEXT = {
    "sv": {
        "title": "Beredskap för återställning",
        "generated": "Skapad",
        "system": "System",
        "up": "Uppe",
        "ready": "Redo",
        "backup": "Säkerhetskopia",
        "age": "Ålder",
        "rpo": "RPO",
        "verified": "Verifierad",
        "restored": "Återställningstest",
        "reasons": "Skäl",
        "_lang": "sv",
        "yes": "ja",
        "no": "nej",
        "unknown": "okänt",
        "never": "aldrig",
        "none": "inga säkerhetskopior konfigurerade",
        "ready_all": "REDO",
        "not_ready": "INTE REDO",
        "state": "läge",
        "normal": "normalt",
        "degraded": "nedsatt",
        "rto_breached": "RTO överskriden",
        "mtpd_breached": "MTPD överskriden",
    },
    "en": {
        "title": "Backup readiness",
        "generated": "Generated",
        "system": "System",
        "up": "Up",
        "ready": "Ready",
        "backup": "Backup",
        "age": "Age",
        "rpo": "RPO",
        "verified": "Verified",
        "restored": "Restore tested",
        "reasons": "Reasons",
        "_lang": "en",
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "never": "never",
        "none": "no backups configured",
        "ready_all": "READY",
        "not_ready": "NOT READY",
        "state": "state",
        "normal": "normal",
        "degraded": "degraded",
        "rto_breached": "RTO breached",
        "mtpd_breached": "MTPD breached",
    },
}


def _yes_no(value: bool | None, t: dict[str, str]) -> str:
    return t["unknown"] if value is None else t["yes"] if value else t["no"]


def _state(dept: dict[str, Any], t: dict[str, str]) -> str:
    """The department's continuity state in the page's language."""
    state = str(dept["state"])
    return t.get(state, state)


def _age(backup: dict[str, Any]) -> str:
    age = backup["age_seconds"]
    return "-" if age is None else duration(age)


def table(report: dict[str, Any], lang: str = "en") -> str:
    t = _TEXT[lang]
    lines = [f"{t['title']} – {t['generated']} {report['generated_at']}"]
    head = [t["system"], t["up"], t["ready"], t["backup"], t["age"], t["rpo"], t["verified"]]
    head.append(t["restored"])
    for dept in report["departments"]:
        verdict = t["ready_all"] if dept["ready"] else t["not_ready"]
        lines += [
            "",
            f"{dept['name']} ({dept['id']}): {verdict}  [{t['state']}: {_state(dept, t)}]",
        ]
        rows = [head]
        for system in dept["systems"]:
            first = [system["name"], _yes_no(system["up"], t), _yes_no(system["ready"], t)]
            if not system["backups"]:
                rows.append([*first, t["none"], "", "", "", ""])
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


def department_html(dept: dict[str, Any], t: dict[str, str]) -> str:
    verdict = t["ready_all"] if dept["ready"] else t["not_ready"]
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
                cells.append(f'<td colspan="5">{html.escape(t["none"])}</td>')
            else:
                cells += [
                    _cell(b["check"]),
                    _cell(f"{_age(b)} / {duration(b['rpo_seconds'])}", b["ready"]),
                    _cell(b["verified_at"] or t["never"]),
                    _cell(b["restore_tested_at"] or "-"),
                    _reasons(b["reasons"], t.get("_lang", "en")),
                ]
            up = {True: "true", False: "false", None: "unknown"}[system["up"]]
            attrs = f'data-system="{html.escape(system["id"])}" data-up="{up}"'
            rows.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    head = "".join(
        f"<th>{html.escape(t[k])}</th>"
        for k in ("system", "up", "ready", "backup", "age", "verified", "restored", "reasons")
    )
    return (
        f'<section class="dept"><h2>{html.escape(dept["name"])} – '
        f'<span class="{"ok" if dept["ready"] else "bad"}">{verdict}</span></h2>'
        f'<p data-state="{html.escape(dept["state"])}">'
        f"{html.escape(t['state'])}: {html.escape(_state(dept, t))}</p>"
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
    t = _TEXT[lang]
    body = "".join(department_html(d, t) for d in report["departments"])
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(t['title'])}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(t['title'])}</h1>"
        f"<p>{html.escape(t['generated'])}: {html.escape(report['generated_at'])}</p>"
        f"{body}</body></html>\n"
    )


def section(report: dict[str, Any], lang: str = "en") -> str:
    """The status-page part: departments with backups, a line each, reasons inline."""
    t = _TEXT[lang]
    parts = [f"<h2>{html.escape(t['title'])}</h2>"]
    for dept in report["departments"]:
        parts.append(department_html(dept, t).replace('class="dept"', 'class="dept-inline"'))
    return "".join(parts)
