"""HTTP API of alerting: incidents, acknowledgements, silences (DESIGN.md, HTTP)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aiohttp import web

from agent.auth import require_operator, require_reader
from agent.web import read_json
from alerting.model import Incident, Silence
from alerting.payload import rfc3339
from alerting.service import AlertingService
from alerting.views import incident_json
from checks.base import parse_duration

MATCHER_KEYS_HINT = "check, department, system or a label name"


def silence_json(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": silence.matchers,
        "starts_at": rfc3339(silence.starts_at),
        "ends_at": rfc3339(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
    }


def _time(value: Any, key: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise web.HTTPBadRequest(reason=f"{key}: use an RFC 3339 time or unix seconds")


def parse_silence(body: dict[str, Any], now: float) -> tuple[dict[str, str], float, float]:
    matchers = body.get("matchers")
    if (
        not isinstance(matchers, dict)
        or not matchers
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in matchers.items())
    ):
        raise web.HTTPBadRequest(
            reason=f"matchers: a non-empty object of glob strings ({MATCHER_KEYS_HINT})"
        )
    starts = _time(body["starts_at"], "starts_at") if "starts_at" in body else now
    if "ends_at" in body:
        ends = _time(body["ends_at"], "ends_at")
    elif "duration_seconds" in body or "duration" in body:
        raw = body.get("duration_seconds", body.get("duration"))
        try:
            ends = starts + parse_duration(raw)
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=f"duration_seconds: {exc}") from None
    else:
        raise web.HTTPBadRequest(reason="give ends_at or duration_seconds")
    if ends <= starts:
        raise web.HTTPBadRequest(reason="the silence ends before it starts")
    return matchers, starts, ends


class AlertingApi:
    def __init__(self, service: AlertingService) -> None:
        self.service = service

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/incidents", self.list_incidents),
            web.post("/api/v1/incidents/{id}/ack", self.ack),
            web.get("/api/v1/silences", self.list_silences),
            web.post("/api/v1/silences", self.create_silence),
            web.delete("/api/v1/silences/{id}", self.delete_silence),
        ]

    async def list_incidents(self, request: web.Request) -> web.Response:
        await require_reader(request, self.service.config.agent.web)
        state = request.query.get("state")
        if state not in (None, "open", "resolved"):
            raise web.HTTPBadRequest(reason="state: open or resolved")
        engine = self.service.engine
        assert engine is not None
        now = time.time()
        if state == "open":
            found = list(engine.state.incidents.values())
        else:
            rows = await self.service.store.incidents(state)
            found = [Incident.from_json(r) for r in rows]
            # Open incidents: the engine's copy is newer than the last commit.
            found = [engine.state.incidents.get(i.id, i) for i in found]
        found.sort(key=lambda i: i.id, reverse=True)
        return web.json_response({"incidents": [incident_json(engine, i, now) for i in found]})

    async def ack(self, request: web.Request) -> web.Response:
        user = await require_operator(request, self.service.config.agent.web)
        body = await read_json(request)
        try:
            incident_id = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound(reason="no such incident") from None
        engine = self.service.engine
        assert engine is not None
        if incident_id not in engine.state.incidents:
            raise web.HTTPNotFound(reason=f"no open incident {incident_id}")
        by = str(body.get("by") or user or request.remote or "unknown")[:200]
        comment = str(body.get("comment") or "")[:2000]
        incident = await self.service.acknowledge(incident_id, by, comment)
        return web.json_response(incident_json(engine, incident, time.time()))

    async def list_silences(self, request: web.Request) -> web.Response:
        await require_reader(request, self.service.config.agent.web)
        engine = self.service.engine
        assert engine is not None
        now = time.time()
        active = [s for s in engine.state.silences.values() if s.ends_at > now]
        return web.json_response({"silences": [silence_json(s) for s in active]})

    async def create_silence(self, request: web.Request) -> web.Response:
        user = await require_operator(request, self.service.config.agent.web)
        body = await read_json(request)
        matchers, starts, ends = parse_silence(body, time.time())
        by = str(body.get("created_by") or user or request.remote or "unknown")[:200]
        silence = await self.service.add_silence(
            matchers, starts, ends, str(body.get("comment") or "")[:2000], by
        )
        return web.json_response(silence_json(silence), status=201)

    async def delete_silence(self, request: web.Request) -> web.Response:
        await require_operator(request, self.service.config.agent.web)
        engine = self.service.engine
        assert engine is not None
        try:
            silence_id = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound(reason="no such silence") from None
        if silence_id not in engine.state.silences:
            raise web.HTTPNotFound(reason=f"no active silence {silence_id}")
        silence = await self.service.expire_silence(silence_id)
        return web.json_response(silence_json(silence))
