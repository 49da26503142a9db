"""The status page for people: plain HTML, no JavaScript, readable on a phone."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from checks.base import Status

if TYPE_CHECKING:
    from agent.daemon import Agent

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


def render_status_page(agent: Agent) -> str:
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
    sections = "".join(section(agent) for section in agent.status_sections)
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
