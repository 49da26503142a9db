"""HTTP API of history: one incident with its timeline, a system's daily
availability, and the audit trail (DESIGN.md, History)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from agent import downtime
from agent.state.interface import IncidentSpan
from agent.web.alerting import parse_id
from agent.web.auth import require_reader
from alerting.model import Incident
from alerting.payload import rfc3339
from alerting.views import incident_json

if TYPE_CHECKING:
    from agent.config import Config
    from agent.history_component import HistoryComponent
    from agent.web.host import WebHost

MAX_DAYS = 3660


def system_spans_down(spans: list[IncidentSpan], now: float) -> list[downtime.Interval]:
    return [(s.started_at, s.resolved_at if s.resolved_at is not None else now) for s in spans]


def breaches(
    spans: list[IncidentSpan], rto: float | None, mtpd: float | None, now: float
) -> list[tuple[float, str]]:
    """When each incident crossed its RTO and MTPD (it lasted longer than either)."""
    out = []
    for s in spans:
        end = s.resolved_at if s.resolved_at is not None else now
        for limit, kind in ((rto, "rto"), (mtpd, "mtpd")):
            if limit is not None and end - s.started_at > limit:
                out.append((s.started_at + limit, kind))
    return out


def find_system(config: Config, department: str | None, system: str) -> Any:
    for dept in config.departments:
        if dept.id == department:
            for s in dept.systems:
                if s.id == system:
                    return s
    return None


def parse_days(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise web.HTTPBadRequest(reason=f"days: a whole number from 1 to {MAX_DAYS}")
    return int(raw)


async def availability(
    host: WebHost,
    history: HistoryComponent,
    department: str | None,
    system: str,
    days: int,
    from_memory: bool = True,
) -> dict[str, Any]:
    """The daily availability of one system over the last `days` local days; by
    default (the status page) from the incidents last read while a fleet's store is down."""
    config = host.config
    now = time.time()
    zone = config.agent.timezone
    today = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    calendar = downtime.local_days(today - timedelta(days=days - 1), days, zone)
    since, until = calendar[0][1], calendar[-1][2]
    spans = [
        s
        for s in await history.spans(since, until, from_memory)
        if s.department == department and s.system == system
    ]
    unit = find_system(config, department, system)
    rto = unit.rto if unit is not None else None
    mtpd = unit.mtpd if unit is not None else None
    maint = downtime.maintenance_intervals(config, department, system, since, until)
    rows = downtime.daily(
        system_spans_down(spans, now), maint, breaches(spans, rto, mtpd, now), calendar, now
    )
    return {
        "department": department,
        "system": system,
        "rto_seconds": rto,
        "mtpd_seconds": mtpd,
        "timezone": zone,
        "days": rows,
    }


class HistoryApi:
    def __init__(self, host: WebHost, history: HistoryComponent) -> None:
        self.host = host
        self.history = history

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/incidents/{id}", self.incident),
            web.get("/api/v1/history", self.system_history),
            web.get("/api/v1/audit", self.audit),
        ]

    async def incident(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        incident_id = parse_id(request.match_info["id"], "incident")
        document = await incident_document(self.host, self.history, incident_id)
        if document is None:
            raise web.HTTPNotFound(reason=f"no incident {incident_id}")
        return web.json_response(document)

    async def system_history(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        raw = request.query.get("system", "")
        department, sep, system = raw.rpartition("/")
        if not system or len(raw) > 300:
            raise web.HTTPBadRequest(reason="system: DEPARTMENT/SYSTEM (or a check name)")
        dept = department if sep else None
        if dept is not None and find_system(self.host.config, dept, system) is None:
            raise web.HTTPNotFound(reason=f"no system {raw!r} in the config")
        days = parse_days(request.query.get("days"), 90)
        async with self._store_failures():
            doc = await availability(self.host, self.history, dept, system, days, False)
        return web.json_response(doc)

    async def audit(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        days = parse_days(request.query.get("days"), 30)
        async with self._store_failures():
            entries = await audit_trail(self.host, self.history, time.time() - days * 86400.0)
        return web.json_response({"audit": entries})

    @contextlib.asynccontextmanager
    async def _store_failures(self) -> AsyncIterator[None]:
        """A fleet's store down: 503 in one line, not a 500 with a traceback."""
        try:
            yield
        except Exception as exc:
            if not self.history.is_store_failure(exc):
                raise
            raise web.HTTPServiceUnavailable(
                reason="the state store cannot be read; try again"
            ) from None


async def incident_document(
    host: WebHost, history: HistoryComponent, incident_id: int
) -> dict[str, Any] | None:
    service = host.alerting.service
    engine = service.engine
    assert engine is not None
    # Incidents live in the alerting store: the shared one in a fleet, where the
    # agent's own SQLite has none.
    incident = engine.state.incidents.get(incident_id)
    if incident is None:
        data = await service.store.incident(incident_id)
        if data is None:
            return None
        incident = Incident.from_json(data)
    document = incident_json(engine, incident, time.time())
    document["timeline"] = [
        {**event, "at": rfc3339(event["at"])} for event in await service.store.timeline(incident_id)
    ]
    return document


async def audit_trail(
    host: WebHost, history: HistoryComponent, since: float
) -> list[dict[str, Any]]:
    """Who did what: acks (from the incident timelines), silences and reloads, newest first."""
    entries = await history.store.audit_trail(since)
    for silence in await host.alerting.service.store.silences():
        if silence.starts_at >= since:
            target = ",".join(f"{k}={v}" for k, v in sorted(silence.matchers.items()))
            entries.append(
                {
                    "at": silence.starts_at,
                    "actor": silence.created_by,
                    "action": "silence",
                    "target": target,
                    "detail": silence.comment,
                }
            )
    for ack in await history.store.acks(since):
        entries.append(ack)
    entries.sort(key=lambda e: e["at"], reverse=True)
    return [{**e, "at": rfc3339(e["at"])} for e in entries]
