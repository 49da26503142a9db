"""The monthly report as Markdown and as printable HTML (A4, a page per department).

The words come from core/i18n/; the report is in English unless a caller asks for
another language (`vaktpost report` does not yet)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from core.i18n import upper_first, words

Words = Mapping[str, str]


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    text = "".join(parts)
    return text + (f"{secs}s" if secs or not text else "")


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.3f} %"


def _yes(flag: bool, t: Words) -> str:
    return t["yes"] if flag else t["no"]


def _tables(dept: dict[str, Any], t: Words) -> list[tuple[str, list[str], list[list[str]]]]:
    systems = [
        [s["name"], _pct(s["availability"]), _dur(s["downtime_seconds"]),
         _dur(s["maintenance_seconds"]), _dur(s["rto_seconds"]), _dur(s["mtpd_seconds"]),
         str(s["incidents"])]
        for s in dept["systems"]
    ]  # fmt: skip
    incidents = [
        [f"#{i['id']}", i["system"], i["started_at"], _dur(i["duration_seconds"]),
         i["root_cause"] or (f"#{i['caused_by']}" if i["caused_by"] else "–"),
         _yes(i["rto_breached"], t), _yes(i["mtpd_breached"], t),
         _dur(i["time_to_first_ack_seconds"])]
        for i in dept["incidents"]
    ]  # fmt: skip
    backups = [
        [s["name"], b["check"], _dur(b["rpo_seconds"]), _pct(b["ready_share"])]
        for s in dept["systems"]
        for b in s["backups"]
    ]
    availability, listed = t["report_availability"], t["report_incidents"]
    return [
        (availability, [t["system"], availability, t["report_downtime"], t["maintenance"],
                        "RTO", "MTPD", listed], systems),
        (listed, [t["incident"], t["system"], t["started"], t["duration"], t["root_cause"],
                  t["state_rto_breached"], t["state_mtpd_breached"], t["report_first_ack"]],
         incidents),
        (t["report_backups"], [t["system"], t["report_check"], t["rpo"], upper_first(t["ready"])],
         backups),
    ]  # fmt: skip


def _drill_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            d["drill"],
            d["sent_at"],
            ", ".join(d["targets"]),
            d["result"],
            d["acked_by"] or "",
            "" if d["ack_seconds"] is None else f"{d['ack_seconds']:.0f} s",
        ]
        for d in doc.get("drills", [])
    ]


def _drill_head(t: Words) -> list[str]:
    keys = ("report_sent", "report_targets", "report_result", "acked_by", "report_after")
    return [upper_first(t["drill"]), *(t[k] for k in keys)]


def _period(doc: dict[str, Any], t: Words) -> str:
    period = doc["period"]
    return t["report_period"].format(
        start=period["start"], end=period["end"], timezone=doc["timezone"]
    )


def markdown(doc: dict[str, Any], lang: str = "en") -> str:
    t = words(lang)
    out = [f"# {t['report_title'].format(month=doc['month'], agent=doc['agent'])}", ""]
    out.append(_period(doc, t))
    for dept in doc["departments"]:
        out += ["", f"## {dept['name']}"]
        for title, head, rows in _tables(dept, t):
            out += ["", f"### {title}", ""]
            if not rows:
                out.append(t["report_none"])
                continue
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += ["", f"## {t['report_drills']}", ""]
    drills = _drill_rows(doc)
    if not drills:
        out.append(t["report_none"])
    else:
        head = _drill_head(t)
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in drills]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:sans-serif;color:#111;margin:1.5em;max-width:60em}
table{border-collapse:collapse;width:100%;margin-bottom:1em}
th,td{border:1px solid #888;padding:3px 6px;text-align:left;font-size:.9em}
th{background:#eee}
@page{size:A4;margin:15mm}
@media print{body{margin:0}section{break-before:page}section:first-of-type{break-before:auto}
thead{display:table-header-group}tr{break-inside:avoid}}
"""


def html_page(doc: dict[str, Any], lang: str = "en") -> str:
    e, t = html.escape, words(lang)
    title = t["report_page_title"].format(month=doc["month"])
    parts = [
        "<!doctype html>",
        f'<html lang="{e(lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(t['report_title'].format(month=doc['month'], agent=doc['agent']))}</h1>",
        f"<p>{e(_period(doc, t))}</p>",
    ]
    for dept in doc["departments"]:
        parts.append(f'<section class="department"><h2>{e(dept["name"])}</h2>')
        for heading, head, rows in _tables(dept, t):
            parts.append(f"<h3>{e(heading)}</h3>")
            if not rows:
                parts.append(f"<p>{e(t['report_none'])}</p>")
                continue
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head))
            parts.append("</tr></thead><tbody>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
        parts.append(f"<p>{e(t['report_signed'])}</p></section>")
    parts.append(f'<section class="drills"><h2>{e(t["report_drills"])}</h2>')
    drills = _drill_rows(doc)
    if not drills:
        parts.append(f"<p>{e(t['report_none'])}</p>")
    else:
        cells = "".join(f"<th>{e(h)}</th>" for h in _drill_head(t))
        parts.append(f"<table><thead><tr>{cells}")
        parts.append("</tr></thead><tbody>")
        for row in drills:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
