"""The status page for people: plain HTML, no JavaScript, readable on a phone."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from agent.web import readiness_render
from core.durations import format_duration
from core.status import Status

if TYPE_CHECKING:
    from agent.web.host import WebHost
    from alerting.engine import IncidentEngine

_COLOURS = {
    Status.OK: "#1b7f3b",
    Status.WARNING: "#b26a00",
    Status.CRITICAL: "#b00020",
    Status.UNKNOWN: "#5f4b8b",
    Status.UNREACHABLE: "#555",
}
_TEXT = {
    "sv": {
        "title": "vaktpost",
        "checks": "Kontroller",
        "name": "Namn",
        "status": "Status",
        "message": "Meddelande",
        "age": "Senast",
        "never": "aldrig",
        "s_ago": "s sedan",
    },
    "en": {
        "title": "vaktpost",
        "checks": "Checks",
        "name": "Name",
        "status": "Status",
        "message": "Message",
        "age": "Last run",
        "never": "never",
        "s_ago": "s ago",
    },
}


def render_status_page(agent: WebHost) -> str:
    lang = agent.config.agent.language
    t = _TEXT[lang]
    now = time.time()
    rows = []
    states = sorted(
        agent.book.states.values(),
        key=lambda s: (-(s.result.status.badness if s.result else 0), s.config.name),
    )
    for state in states:
        result = state.result
        status = result.status if result else None
        colour = _COLOURS.get(status, "#555") if status is not None else "#555"
        label = status.label if status is not None else "pending"
        age = f"{now - result.finished_at:.0f} {t['s_ago']}" if result else t["never"]
        rows.append(
            f"<tr><td>{html.escape(state.config.name)}</td>"
            f'<td style="color:{colour};font-weight:bold">{label}</td>'
            f"<td>{html.escape(result.message if result else '')}</td><td>{age}</td></tr>"
        )
    sections = _sections(agent, now)
    name = html.escape(agent.config.agent.name)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>{t["title"]} – {name}</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>{t["title"]} – {name}</h1>
{sections}
<h2>{t["checks"]}</h2>
<table><tr><th>{t["name"]}</th><th>{t["status"]}</th><th>{t["message"]}</th><th>{t["age"]}</th></tr>
{"".join(rows)}
</table></body></html>
"""


def _sections(agent: WebHost, now: float) -> str:
    """What the engine and the readiness report have to say, above the checks."""
    parts = []
    engine = agent.alerting.service.engine
    if engine is not None:
        parts.append(incidents_section(engine, now))
    if agent.config.departments:
        lang = agent.config.agent.language
        parts.append(readiness_render.section(agent.readiness.document(), lang))
    return "".join(parts)


_HEAD = {
    "sv": (
        "Öppna incidenter",
        "Inga öppna incidenter.",
        "System",
        "Status",
        "Nere",
        "Steg",
        "Kvitterad av",
        "Påverkar",
        "Orsakad av",
    ),
    "en": (
        "Open incidents",
        "No open incidents.",
        "System",
        "Status",
        "Down",
        "Step",
        "Acknowledged by",
        "Impacts",
        "Caused by",
    ),
}


def incidents_section(engine: IncidentEngine, now: float) -> str:
    t = _HEAD.get(engine.plan.language, _HEAD["en"])
    incidents = sorted(engine.state.incidents.values(), key=lambda i: i.started_at)
    if not incidents:
        return f"<h2>{t[0]}</h2><p>{t[1]}</p>\n"
    rows = []
    for i in incidents:
        what = f"{i.department}/{i.system}" if i.department else i.system
        rto = engine.plan.units.get((i.department, i.system))
        down = format_duration(now - i.started_at)
        if rto is not None and rto.rto is not None:
            down += f" / RTO {format_duration(rto.rto)}"
        impacted = ", ".join(f"{d}/{s}" if d else s for d, s in i.impacted)
        # An impacted system's incident names its root cause's (engines that track it).
        cause = i.caused_by
        rows.append(
            f"<tr><td>#{i.id} {html.escape(what)}</td><td>{i.status}</td><td>{down}</td>"
            f"<td>{'' if i.current_step is None else i.current_step}</td>"
            f"<td>{html.escape(i.acked_by or '')}</td><td>{html.escape(impacted)}</td>"
            f"<td>{'' if cause is None else f'#{cause}'}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in t[2:])
    return f"<h2>{t[0]}</h2><table><tr>{head}</tr>{''.join(rows)}</table>\n"
