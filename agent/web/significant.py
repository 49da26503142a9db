"""HTTP API of significant incidents: mark one, mark a report stage sent, and the
pre-filled report draft (docs/significant.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web.alerting import parse_id
from agent.web.auth import require_operator, require_reader
from agent.web.bodies import read_json
from agent.web.history import incident_document
from alerting.significant import STAGES

if TYPE_CHECKING:
    from agent.web.host import WebHost
    from alerting.significant_clocks import SignificantClocks

MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT or _CONTROL.search(value):
        raise web.HTTPBadRequest(reason=f"{key}: a line of text up to {MAX_TEXT} characters")
    return value


def _only(body: dict[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(body) - keys)
    if unknown:
        raise web.HTTPBadRequest(reason=f"unknown key {unknown[0][:64]!r}")


class SignificantApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    @property
    def clocks(self) -> SignificantClocks:
        return self.host.alerting.service.significant

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/incidents/{id}/significant", self.mark),
            web.post("/api/v1/incidents/{id}/reported", self.reported),
            web.get("/api/v1/incidents/{id}/report", self.report),
        ]

    async def _incident(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        incident_id = parse_id(request.match_info["id"], "incident")
        document = await incident_document(self.host, self.host.history, incident_id)
        if document is None:
            raise web.HTTPNotFound(reason=f"no incident {incident_id}")
        return incident_id, document

    async def mark(self, request: web.Request) -> web.Response:
        user = await require_operator(request, self.host.config.agent.web)
        body = await read_json(request)
        _only(body, {"by", "comment"})
        by = _text(body, "by") or user or request.remote or "unknown"
        comment = _text(body, "comment")
        incident_id, _ = await self._incident(request)
        await self.clocks.mark(incident_id, by, comment or "marked by an operator")
        await self.host.history.audit(by, "significant", f"incident {incident_id}", comment)
        return web.json_response(self.clocks.document(incident_id))

    async def reported(self, request: web.Request) -> web.Response:
        user = await require_operator(request, self.host.config.agent.web)
        body = await read_json(request)
        _only(body, {"stage", "by"})
        stage = body.get("stage")
        if stage not in STAGES:
            raise web.HTTPBadRequest(reason=f"stage: one of {', '.join(STAGES)}")
        by = _text(body, "by") or user or request.remote or "unknown"
        incident_id = parse_id(request.match_info["id"], "incident")
        if self.clocks.document(incident_id) is None:
            raise web.HTTPNotFound(reason=f"incident {incident_id} is not marked significant")
        await self.clocks.reported(incident_id, str(stage), by)
        await self.host.history.audit(by, "reported", f"incident {incident_id}", str(stage))
        return web.json_response(self.clocks.document(incident_id))

    async def report(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        incident_id, document = await self._incident(request)
        return web.json_response(draft(self.host, document, self.clocks.document(incident_id)))


def draft(
    host: WebHost, incident: dict[str, Any], significance: dict[str, Any] | None
) -> dict[str, Any]:
    """The report draft: what, when, who was hit, cause, fallback, acks, the timeline."""
    config = host.config
    hit: list[dict[str, Any]] = []
    systems = [(incident.get("department"), incident.get("system"))]
    systems += [(i.get("department"), i.get("system")) for i in incident.get("impacted", [])]
    for department, system in systems:
        dept = next((d for d in config.departments if d.id == department), None)
        unit = next((s for s in dept.systems if s.id == system), None) if dept else None
        hit.append(
            {
                "department": department,
                "department_name": dept.title if dept else None,
                "system": system,
                "system_name": unit.title if unit else None,
                "rto_seconds": unit.rto if unit else None,
                "mtpd_seconds": unit.mtpd if unit else None,
                "fallback": unit.fallback if unit else "",
            }
        )
    timeline = incident.get("timeline", [])
    acks = [e for e in timeline if e.get("kind") == "acknowledged"]
    return {
        "incident_id": incident["id"],
        "agent": config.agent.name,
        "status": incident.get("status"),
        "started_at": incident.get("started_at"),
        "resolved_at": incident.get("resolved_at"),
        "downtime_seconds": incident.get("downtime_seconds"),
        "rto_breached": incident.get("rto_breached", False),
        "mtpd_breached": incident.get("mtpd_breached", False),
        "caused_by": incident.get("caused_by"),
        "root_cause": incident.get("root_cause"),
        "checks": incident.get("checks", []),
        "impacted": hit,
        "acknowledgements": acks,
        "significant": significance,
        "timeline": timeline,
    }
