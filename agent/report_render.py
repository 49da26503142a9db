"""The monthly report as Markdown and as printable HTML (A4, a page per department)."""

from __future__ import annotations

import html
from typing import Any


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


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _tables(dept: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    systems = [
        [s["name"], _pct(s["availability"]), _dur(s["downtime_seconds"]),
         _dur(s["maintenance_seconds"]), _dur(s["rto_seconds"]), _dur(s["mtpd_seconds"]),
         str(s["incidents"])]
        for s in dept["systems"]
    ]  # fmt: skip
    incidents = [
        [f"#{i['id']}", i["system"], i["started_at"], _dur(i["duration_seconds"]),
         i["root_cause"] or (f"#{i['caused_by']}" if i["caused_by"] else "–"),
         _yes(i["rto_breached"]), _yes(i["mtpd_breached"]),
         _dur(i["time_to_first_ack_seconds"])]
        for i in dept["incidents"]
    ]  # fmt: skip
    backups = [
        [s["name"], b["check"], _dur(b["rpo_seconds"]), _pct(b["ready_share"])]
        for s in dept["systems"]
        for b in s["backups"]
    ]
    return [
        ("Availability", ["System", "Availability", "Downtime", "Maintenance", "RTO", "MTPD",
                          "Incidents"], systems),
        ("Incidents", ["Incident", "System", "Started", "Duration", "Root cause", "RTO breached",
                       "MTPD breached", "First ack after"], incidents),
        ("Backups", ["System", "Check", "RPO", "Ready"], backups),
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


_DRILL_HEAD = ["Drill", "Sent", "Targets", "Result", "Acknowledged by", "After"]


def markdown(doc: dict[str, Any]) -> str:
    out = [f"# Continuity report {doc['month']} — {doc['agent']}", ""]
    out.append(f"Period {doc['period']['start']} to {doc['period']['end']} ({doc['timezone']}).")
    for dept in doc["departments"]:
        out += ["", f"## {dept['name']}"]
        for title, head, rows in _tables(dept):
            out += ["", f"### {title}", ""]
            if not rows:
                out.append("None.")
                continue
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += ["", "## Channel drills", ""]
    drills = _drill_rows(doc)
    if not drills:
        out.append("None.")
    else:
        out.append("| " + " | ".join(_DRILL_HEAD) + " |")
        out.append("|" + "---|" * len(_DRILL_HEAD))
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


def html_page(doc: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Continuity report {e(doc['month'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Continuity report {e(doc['month'])} — {e(doc['agent'])}</h1>",
        f"<p>Period {e(doc['period']['start'])} to {e(doc['period']['end'])}"
        f" ({e(doc['timezone'])}).</p>",
    ]
    for dept in doc["departments"]:
        parts.append(f'<section class="department"><h2>{e(dept["name"])}</h2>')
        for title, head, rows in _tables(dept):
            parts.append(f"<h3>{e(title)}</h3>")
            if not rows:
                parts.append("<p>None.</p>")
                continue
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head))
            parts.append("</tr></thead><tbody>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
        parts.append("<p>Signed: ______________________ Date: ____________</p></section>")
    parts.append('<section class="drills"><h2>Channel drills</h2>')
    drills = _drill_rows(doc)
    if not drills:
        parts.append("<p>None.</p>")
    else:
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in _DRILL_HEAD))
        parts.append("</tr></thead><tbody>")
        for row in drills:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
