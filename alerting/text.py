"""Notification text for people in `agent.language`; the words are in core/i18n/."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.durations import format_duration
from core.i18n import words

Words = Mapping[str, str]

# The word in brackets before the title; a refresh re-posts the alert as it stands.
_HEADING = {
    "firing": "kind_firing",
    "refresh": "kind_firing",
    "repeat": "kind_repeat",
    "acknowledged": "kind_acknowledged",
    "resolved": "kind_resolved",
}
# (left, exceeded, short) per objective: the keys of its three lines.
_OBJECTIVE = {
    "rto": ("note_rto_left", "note_rto_over", "note_rto_short"),
    "mtpd": ("note_mtpd_left", "note_mtpd_over", "note_mtpd_short"),
}


def local_time(ts: float, timezone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _objective(t: Words, name: str, total: float | None, down: float) -> str | None:
    if total is None:
        return None
    left, over, _ = _OBJECTIVE[name]
    if down < total:
        return t[left].format(left=format_duration(total - down))
    return t[over].format(**{name: format_duration(total)}, over=format_duration(down - total))


def _left(t: Words, name: str, seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds <= 0:
        return f"{name.upper()} {t['note_exceeded']}"
    return t[_OBJECTIVE[name][2]].format(left=format_duration(seconds))


def impacted_lines(t: Words, impacted: list[dict[str, Any]]) -> list[str]:
    """One line per impacted system with its own time left, and its fallback under it."""
    lines = []
    for i in impacted:
        name = i.get("system_name") or i["system"]
        if i.get("department_name") or i.get("department"):
            name = f"{i.get('department_name') or i['department']}: {name}"
        parts = [
            part
            for part in (
                _left(t, "rto", i.get("rto_remaining_seconds")),
                _left(t, "mtpd", i.get("mtpd_remaining_seconds")),
            )
            if part
        ]
        lines.append(f"- {name} ({', '.join(parts)})" if parts else f"- {name}")
        fallback = (i.get("fallback") or "").strip()
        if fallback:
            body = "\n    ".join(fallback.splitlines())
            lines.append(f"  {t['fallback']}: {body}")
    return lines


def acked_lines(t: Words, p: dict[str, Any]) -> list[str]:
    """Who acknowledged, how (sms, link, api, cli) and what they said."""
    by, via = p["acknowledged_by"], p.get("acknowledged_via")
    if via:
        lines = [t["note_acked_via"].format(by=by, via=via)]
    else:
        lines = [t["note_acked_by"].format(by=by)]
    comment = (p.get("ack_comment") or "").strip()
    if comment:
        lines.append(t["note_ack_comment"].format(comment=comment))
    return lines


def render(
    p: dict[str, Any], kind: str, *, language: str, timezone: str, started_ts: float, what: str
) -> str:
    """The `text` of a payload: what is down, since when, who is hit, time left, fallback."""
    t = words(language)
    downtime = format_duration(p["downtime_seconds"])
    head = f"[{t[_HEADING[kind]]}] {what}"
    if kind == "resolved":
        return f"{head}\n{t['note_up'].format(what=what, downtime=downtime)}"
    since = local_time(started_ts, timezone)
    lines = [head, t["note_down"].format(what=what, since=since, downtime=downtime)]
    if p.get("message"):
        lines.append(p["message"])
    checks = ", ".join(f"{c['name']} ({c['status']}: {c['message']})" for c in p["checks"])
    if checks:
        lines.append(f"{t['note_checks']}: {checks}")
    if p.get("caused_by") is not None:
        lines.append(t["note_caused_by"].format(id=p["caused_by"]))
    if p["impacted"]:
        lines.append(f"{t['note_impacted']} ({len(p['impacted'])}):")
        lines += impacted_lines(t, p["impacted"])
    for name, key in (("rto", "rto_seconds"), ("mtpd", "mtpd_seconds")):
        line = _objective(t, name, p[key], p["downtime_seconds"])
        if line:
            lines.append(line)
    if p["fallback"]:
        lines.append(f"{t['fallback']}: {p['fallback'].strip()}")
    if kind == "acknowledged" and p.get("acknowledged_by"):
        lines += acked_lines(t, p)
    else:
        if p.get("ack_code"):
            lines.append(t["note_ack_code"].format(code=p["ack_code"]))
        if p.get("ack_url"):
            lines.append(t["ack_by_link"].format(url=p["ack_url"]))
        lines.append(t["note_ack"].format(id=p["incident_id"]))
    lines.append(f"{t['agent']}: {p['agent']}")
    return "\n".join(lines)


def drill_text(text: str, incident_id: int, *, language: str) -> str:
    """A drill's text: `[DRILL]` before the title, and the ack hint replaced by a notice.

    The simulated incident's id means nothing to the running agent (or worse, is
    a real incident's id there), so the drill must not tell anyone to ack it.
    """
    t = words(language)
    ack = t["note_ack"].format(id=incident_id)
    # The simulated incident's code and link could be a real incident's: never shown.
    hints = (t["note_ack_code"].split("{")[0], t["ack_by_link"].split("{")[0])
    kept = [line for line in text.splitlines() if not line.startswith(hints)]
    lines = [t["note_drill"] if line == ack else line for line in kept]
    if t["note_drill"] not in lines:
        lines.append(t["note_drill"])
    lines[0] = f"[{t['drill'].upper()}] {lines[0]}"
    return "\n".join(lines)
