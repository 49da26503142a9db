"""The operator console (`GET /`) and a page per incident (`GET /incidents/{id}`).

The handlers gather one view model from the department document, the engine and
the history; Jinja2 templates (agent/web/templates/, autoescaped) render it. No
JavaScript: the ack button is a plain form with a signed CSRF token.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from agent.web import readiness_render
from agent.web.csrf import TokenSigner, form_with_token
from agent.web.history import availability, incident_document
from agent.web.oncall import render_oncall_section
from alerting.mute import in_window
from core.cron import cron_schedule
from core.i18n import LANGUAGES, reason, text, upper_first, words

if TYPE_CHECKING:
    import jinja2

    from agent.history_component import HistoryComponent
    from agent.web.host import WebHost

log = logging.getLogger("vaktpost.console")
TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def _env() -> jinja2.Environment:
    """Built at the first page: Jinja2 is ~1 MiB of RSS an agent nobody browses never needs."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["upper_first"] = upper_first
    return env


CONSOLE_DAYS = 90
RECENT_DAYS = 30
QUEUE_TROUBLE = 20  # pending notifications on one channel: the queue is growing

# The word on a system's badge, by the state system_view gives it.
_SYSTEM_WORD = {
    "up": "system_up",
    "down": "system_down",
    "impacted": "system_impacted",
    "unknown": "unknown",
}


def language(host: WebHost, request: web.Request) -> str:
    lang = request.query.get("lang", "")
    return lang if lang in LANGUAGES else host.config.agent.language


def _page_words(lang: str) -> dict[str, Any]:
    """What every page's template needs of the language: its table, and the links to the
    others (each named in its own language, 'In English' on a Swedish page)."""
    others = [(other, text(other, "language_name")) for other in LANGUAGES if other != lang]
    return {"t": words(lang), "lang": lang, "others": others}


def human(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def local_time(ts: float | None, timezone: str) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _parse_ts(raw: str | None) -> float | None:
    if raw is None:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


def system_view(
    system: dict[str, Any], incident: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    view: dict[str, Any] = {"id": system["id"], "name": system["name"], "state": "unknown"}
    view["rto"], view["mtpd"] = system.get("rto_seconds"), system.get("mtpd_seconds")
    if incident is not None:
        started = _parse_ts(incident["started_at"]) or now
        down = now - started
        view |= {"state": "impacted" if incident["caused_by"] else "down", "since": started}
        view |= {"down": down, "caused_by": incident["caused_by"], "incident": incident["id"]}
        limit = view["mtpd"] or view["rto"]
        if limit:
            view["bar"] = min(100, round(100 * down / limit))
            view["rto_mark"] = round(100 * view["rto"] / limit) if view["rto"] else None
    elif system.get("up"):
        view["state"] = "up"
    view["word"] = _SYSTEM_WORD[view["state"]]
    view["backups"] = [
        {
            "check": b["check"],
            "age": b.get("age_seconds"),
            "rpo": b["rpo_seconds"],
            "ready": b["ready"],
            "reasons": b.get("reasons", []),
        }
        for b in system.get("backups", [])
    ]
    return view


def maintenance_view(host: WebHost, now: float) -> list[dict[str, Any]]:
    tz = host.config.agent.timezone
    out = []
    for window in host.config.maintenance:
        active = in_window(window, tz, now)
        try:
            nxt = cron_schedule(window.cron, tz).next_after(now)
        except Exception:  # validated at load; a window that cannot run shows no next
            nxt = None
        what = ", ".join(f"{k}={v}" for k, v in sorted(window.match.items()))
        out.append(
            {"what": what, "comment": window.comment, "now": active, "next": nxt,
             "duration": window.duration}
        )  # fmt: skip
    return out


def delivery_trouble(host: WebHost) -> list[dict[str, Any]]:
    service = host.alerting.service
    pending = dict(service.outbox.pending) if service.outbox is not None else {}
    out = []
    for channel in sorted({*pending, *(c for c, _ in service.outcomes)}):
        failed = service.outcomes.get((channel, "failed"), 0)
        delivered = service.outcomes.get((channel, "delivered"), 0)
        queued = pending.get(channel, 0)
        if (failed and failed >= delivered) or queued >= QUEUE_TROUBLE:
            out.append({"channel": channel, "failed": failed, "queued": queued})
    return out


def bars(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for day in days:
        share = day["availability"]
        level = (
            "none"
            if share is None
            else "ok"
            if share >= 0.9999
            else "warn"
            if share >= 0.99
            else "bad"
        )
        out.append({"day": day["day"], "level": level, "share": share})
    return out


async def who(request: web.Request, host: WebHost) -> tuple[str | None, bool]:
    """(user, may act) for the page: the ack form is shown to operators only.

    With users configured the browser sends basic auth (a login prompt when the
    page is opened by someone who wants to act); without, loopback is operator.
    """
    from agent.web.auth import authenticate, is_loopback, is_loopback_host

    web_config = host.config.agent.web
    if not web_config.users:
        local = is_loopback(request.remote) and is_loopback_host(request.host)
        return None, local
    if "Authorization" not in request.headers:
        return None, False
    user, role = await authenticate(request, web_config)
    return user, role == "operator"


class ConsolePages:
    def __init__(self, host: WebHost, history: HistoryComponent) -> None:
        self.host = host
        self.history = history
        self.signer = TokenSigner()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/incidents/{id}", self.incident_page),
            web.post("/incidents/{id}/ack", self.ack_form),
        ]

    async def console(self, request: web.Request, user: str | None, operator: bool) -> str:
        host, now = self.host, time.time()
        lang = language(host, request)
        doc = host.readiness.document()
        departments = []
        for dept in doc["departments"]:
            incidents = {i["system"]: i for i in dept.get("incidents", [])}
            systems = []
            for system in dept["systems"]:
                view = system_view(system, incidents.get(system["id"]), now)
                for backup in view["backups"]:  # reasons in the reader's language
                    backup["reasons"] = [reason(r, lang) for r in backup["reasons"]]
                days = await availability(
                    host, self.history, dept["id"], system["id"], CONSOLE_DAYS
                )
                view["bars"] = bars(days["days"])
                view["fallback"] = _fallback(host, dept["id"], system["id"])
                systems.append(view)
            departments.append(
                {"id": dept["id"], "name": dept["name"], "state": dept.get("state", "normal"),
                 "systems": systems, "incidents": dept.get("incidents", [])}
            )  # fmt: skip
        spans = await self.history.spans(now - RECENT_DAYS * 86400.0, now, from_memory=True)
        recent = [
            {"id": s.id, "what": f"{s.department}/{s.system}" if s.department else s.system,
             "started": s.started_at,
             "duration": (s.resolved_at if s.resolved_at is not None else now) - s.started_at,
             "open": s.resolved_at is None}
            for s in sorted(spans, key=lambda s: -s.started_at)
        ]  # fmt: skip
        open_incidents = [i for d in departments for i in d["incidents"]]
        return _env().get_template("console.html.j2").render(
            **_page_words(lang), agent=host.config.agent.name, departments=departments,
            open_incidents=open_incidents, maintenance=maintenance_view(host, now),
            trouble=delivery_trouble(host), recent=recent, operator=operator,
            token=self.signer.issue(user or "local") if operator else "",
            human=human, when=lambda ts: local_time(ts, host.config.agent.timezone),
            parse_ts=_parse_ts, now=now,
            readiness_html=Markup(readiness_render.section(doc, lang)),
            oncall_html=Markup(render_oncall_section(host.config, lang, now)),
            significant=_significant(host),
        )  # fmt: skip

    async def incident_page(self, request: web.Request) -> web.Response:
        from agent.web.alerting import parse_id
        from agent.web.auth import require_reader

        await require_reader(request, self.host.config.agent.web)
        incident_id = parse_id(request.match_info["id"], "incident")
        doc = await incident_document(self.host, self.history, incident_id)
        if doc is None:
            raise web.HTTPNotFound(reason=f"no incident {incident_id}")
        lang = language(self.host, request)
        page = _env().get_template("incident.html.j2").render(
            **_page_words(lang), agent=self.host.config.agent.name, incident=doc,
            when=lambda raw: local_time(_parse_ts(raw), self.host.config.agent.timezone),
            human=human, significant=_significant_of(self.host, incident_id),
        )  # fmt: skip
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    @form_with_token
    async def ack_form(self, request: web.Request) -> web.Response:
        from agent.web.alerting import parse_id
        from agent.web.auth import require_operator

        user = await require_operator(request, self.host.config.agent.web)
        incident_id = parse_id(request.match_info["id"], "incident")
        form = await request.post()
        token = form.get("csrf_token")
        if not isinstance(token, str) or not self.signer.valid(token, user or "local"):
            raise web.HTTPForbidden(
                reason="the form's CSRF token is missing or stale: reload the page"
            )
        comment = form.get("comment")
        comment = comment[:2000] if isinstance(comment, str) else ""
        engine = self.host.alerting.service.engine
        assert engine is not None
        service = self.host.alerting.service
        if service.holding and incident_id not in engine.state.incidents:
            raise web.HTTPNotFound(reason=f"no open incident {incident_id}")
        by = user or request.remote or "unknown"
        await service.acknowledge(incident_id, by, comment)
        lang = request.query.get("lang")
        suffix = f"?lang={lang}" if lang in LANGUAGES else ""
        raise web.HTTPSeeOther(f"/incidents/{incident_id}{suffix}")


def _significant(host: WebHost) -> list[dict[str, Any]]:
    """Significant incidents with a report stage still due (NIS2 clocks), soonest first."""
    clocks = getattr(host.alerting.service, "significant", None)
    if clocks is None:
        return []
    try:
        return list(clocks.open_documents())
    except Exception:  # the console must render even if the clocks cannot
        log.exception("significant-incident clocks unreadable")
        return []


def _significant_of(host: WebHost, incident_id: int) -> dict[str, Any] | None:
    clocks = getattr(host.alerting.service, "significant", None)
    try:
        return None if clocks is None else clocks.document(incident_id)
    except Exception:  # the page must render even if the clocks cannot
        log.exception("significant-incident clocks unreadable")
        return None


def _fallback(host: WebHost, department: str, system: str) -> str:
    for dept in host.config.departments:
        if dept.id == department:
            for s in dept.systems:
                if s.id == system:
                    return s.fallback
    return ""
