"""Notification text for people, in Swedish or English (`agent.language`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.durations import format_duration

_T = {
    "sv": {
        "firing": "LARM",
        "repeat": "PÅMINNELSE",
        "refresh": "LARM",
        "acknowledged": "KVITTERAT",
        "resolved": "ÅTGÄRDAT",
        "down": "{what} är nere sedan {since} ({downtime}).",
        "up": "{what} fungerar igen efter {downtime}.",
        "checks": "Kontroller",
        "impacted": "Påverkas också",
        "caused_by": "Orsak: incident {id} (följdfel, inte eget fel).",
        "rto_short": "{left} kvar till RTO",
        "mtpd_short": "{left} kvar till MTPD",
        "over": "överskriden",
        "rto_left": "Tid kvar till RTO: {left}.",
        "rto_over": "RTO ({rto}) är överskriden med {over}.",
        "mtpd_left": "Tid kvar till MTPD: {left}.",
        "mtpd_over": "MTPD ({mtpd}) är överskriden med {over}.",
        "fallback": "Reservrutin",
        "ack": "Kvittera: vaktpost ack {id}  (eller POST /api/v1/incidents/{id}/ack)",
        "acked_by": "Kvitterat av {by}.",
        "acked_via": "Kvitterat av {by} via {via}.",
        "ack_comment": "Kommentar: {comment}",
        "ack_code": "Svara K {code} för att kvittera",
        "ack_url": "Kvittera via länk: {url}",
        "agent": "Agent",
        "drill": "ÖVNING",
        "drill_note": "Detta är en övning (vaktpost drill), inget verkligt avbrott. Kvittera inte.",
    },
    "en": {
        "firing": "ALERT",
        "repeat": "REMINDER",
        "refresh": "ALERT",
        "acknowledged": "ACKNOWLEDGED",
        "resolved": "RESOLVED",
        "down": "{what} has been down since {since} ({downtime}).",
        "up": "{what} is working again after {downtime}.",
        "checks": "Checks",
        "impacted": "Also impacted",
        "caused_by": "Caused by incident {id} (a consequence, not a fault of its own).",
        "rto_short": "{left} left to RTO",
        "mtpd_short": "{left} left to MTPD",
        "over": "exceeded",
        "rto_left": "Time left to RTO: {left}.",
        "rto_over": "RTO ({rto}) exceeded by {over}.",
        "mtpd_left": "Time left to MTPD: {left}.",
        "mtpd_over": "MTPD ({mtpd}) exceeded by {over}.",
        "fallback": "Fallback routine",
        "ack": "Acknowledge: vaktpost ack {id}  (or POST /api/v1/incidents/{id}/ack)",
        "acked_by": "Acknowledged by {by}.",
        "acked_via": "Acknowledged by {by} via {via}.",
        "ack_comment": "Comment: {comment}",
        "ack_code": "Reply K {code} to acknowledge",
        "ack_url": "Acknowledge by link: {url}",
        "agent": "Agent",
        "drill": "DRILL",
        "drill_note": "This is a drill (vaktpost drill), not a real outage. Do not acknowledge.",
    },
}


def local_time(ts: float, timezone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _objective(t: dict[str, str], name: str, total: float | None, down: float) -> str | None:
    if total is None:
        return None
    if down < total:
        return t[f"{name}_left"].format(left=format_duration(total - down))
    return t[f"{name}_over"].format(
        **{name: format_duration(total)}, over=format_duration(down - total)
    )


def _left(t: dict[str, str], name: str, seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds <= 0:
        return f"{name.upper()} {t['over']}"
    return t[f"{name}_short"].format(left=format_duration(seconds))


def impacted_lines(t: dict[str, str], impacted: list[dict[str, Any]]) -> list[str]:
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


def acked_lines(t: dict[str, str], p: dict[str, Any]) -> list[str]:
    """Who acknowledged, how (sms, link, api, cli) and what they said."""
    by, via = p["acknowledged_by"], p.get("acknowledged_via")
    lines = [t["acked_via"].format(by=by, via=via) if via else t["acked_by"].format(by=by)]
    comment = (p.get("ack_comment") or "").strip()
    if comment:
        lines.append(t["ack_comment"].format(comment=comment))
    return lines


def render(
    p: dict[str, Any], kind: str, *, language: str, timezone: str, started_ts: float, what: str
) -> str:
    """The `text` of a payload: what is down, since when, who is hit, time left, fallback."""
    t = _T.get(language, _T["sv"])
    downtime = format_duration(p["downtime_seconds"])
    head = f"[{t[kind]}] {what}"
    if kind == "resolved":
        return f"{head}\n{t['up'].format(what=what, downtime=downtime)}"
    since = local_time(started_ts, timezone)
    lines = [head, t["down"].format(what=what, since=since, downtime=downtime)]
    if p.get("message"):
        lines.append(p["message"])
    checks = ", ".join(f"{c['name']} ({c['status']}: {c['message']})" for c in p["checks"])
    if checks:
        lines.append(f"{t['checks']}: {checks}")
    if p.get("caused_by") is not None:
        lines.append(t["caused_by"].format(id=p["caused_by"]))
    if p["impacted"]:
        lines.append(f"{t['impacted']} ({len(p['impacted'])}):")
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
            lines.append(t["ack_code"].format(code=p["ack_code"]))
        if p.get("ack_url"):
            lines.append(t["ack_url"].format(url=p["ack_url"]))
        lines.append(t["ack"].format(id=p["incident_id"]))
    lines.append(f"{t['agent']}: {p['agent']}")
    return "\n".join(lines)


def drill_text(text: str, incident_id: int, *, language: str) -> str:
    """A drill's text: `[DRILL]` before the title, and the ack hint replaced by a notice.

    The simulated incident's id means nothing to the running agent (or worse, is
    a real incident's id there), so the drill must not tell anyone to ack it.
    """
    t = _T.get(language, _T["sv"])
    ack = t["ack"].format(id=incident_id)
    # The simulated incident's code and link could be a real incident's: never shown.
    hints = (t["ack_code"].split("{")[0], t["ack_url"].split("{")[0])
    kept = [line for line in text.splitlines() if not line.startswith(hints)]
    lines = [t["drill_note"] if line == ack else line for line in kept]
    if t["drill_note"] not in lines:
        lines.append(t["drill_note"])
    lines[0] = f"[{t['drill']}] {lines[0]}"
    return "\n".join(lines)
