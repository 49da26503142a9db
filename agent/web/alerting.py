"""HTTP API of alerting: incidents, acknowledgements, silences (DESIGN.md, HTTP)."""

from __future__ import annotations

import logging
import math
import re
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from agent.web.auth import require_operator, require_reader
from agent.web.bodies import read_json
from alerting.model import Incident, Silence
from alerting.payload import rfc3339
from alerting.service import AlertingService
from alerting.views import incident_json
from core.durations import parse_duration

MATCHER_KEYS_HINT = "check, department, system or a label name"
MAX_SILENCE = 366 * 86400.0  # a year (and a leap day): longer is a mistake, not a plan
MAX_MATCHERS = 16
MAX_GLOB = 256
MAX_BY = 200
MAX_COMMENT = 2000
SILENCE_KEYS = frozenset(
    {"matchers", "starts_at", "ends_at", "duration_seconds", "duration", "comment", "created_by"}
)
ACK_KEYS = frozenset({"by", "comment", "via"})
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_ID = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits only: int() would take '١' and ' 1'
# Control characters garble terminals and logs; a comment may still hold lines and tabs.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

log = logging.getLogger("vaktpost.api")


def parse_id(raw: str, what: str) -> int:
    """A positive decimal id in ASCII digits; 404 for anything else."""
    if not _ID.fullmatch(raw):
        raise web.HTTPNotFound(reason=f"no such {what}")
    return int(raw)


def silence_json(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": silence.matchers,
        "starts_at": rfc3339(silence.starts_at),
        "ends_at": rfc3339(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
    }


def _text(body: dict[str, Any], key: str, limit: int, pattern: re.Pattern[str]) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise web.HTTPBadRequest(reason=f"{key}: a string")
    if len(value) > limit:
        raise web.HTTPBadRequest(reason=f"{key}: at most {limit} characters")
    if pattern.search(value):
        raise web.HTTPBadRequest(reason=f"{key}: no control characters")
    return value


def _time(value: Any, key: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            raise web.HTTPBadRequest(
                reason=f"{key}: use an RFC 3339 time with a zone (e.g. ...Z) or unix seconds"
            )
        seconds = stamp.timestamp()
    else:
        raise web.HTTPBadRequest(reason=f"{key}: use an RFC 3339 time or unix seconds")
    if not math.isfinite(seconds) or not 0 <= seconds < 253402300800:  # year 10000
        raise web.HTTPBadRequest(reason=f"{key}: out of range")
    return seconds


def _duration(raw: Any) -> float:
    if isinstance(raw, str) and len(raw) > 64:
        raise web.HTTPBadRequest(reason="duration_seconds: too long")
    try:
        seconds = parse_duration(raw)
    except (ValueError, OverflowError):
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SILENCE:
        raise web.HTTPBadRequest(
            reason="duration_seconds: a positive duration of at most 366 days, "
            "in seconds or with a unit (e.g. 2h, 1h30m, 7d)"
        )
    return seconds


def _matchers(value: Any) -> dict[str, str]:
    hint = f"matchers: a non-empty object of glob strings ({MATCHER_KEYS_HINT})"
    if not isinstance(value, dict) or not value or len(value) > MAX_MATCHERS:
        raise web.HTTPBadRequest(reason=f"{hint}, at most {MAX_MATCHERS}")
    for key, glob in value.items():
        if not isinstance(key, str) or not _LABEL.fullmatch(key):
            raise web.HTTPBadRequest(reason=f"{hint}; {str(key)[:64]!r} is not a name")
        if not isinstance(glob, str) or not glob or len(glob) > MAX_GLOB:
            raise web.HTTPBadRequest(reason=f"matchers.{key}: a glob of 1 to {MAX_GLOB} chars")
        if _CONTROL_OR_NEWLINE.search(glob):
            raise web.HTTPBadRequest(reason=f"matchers.{key}: no control characters")
    return dict(value)


def parse_silence(body: dict[str, Any], now: float) -> tuple[dict[str, str], float, float]:
    unknown = sorted(set(body) - SILENCE_KEYS)
    if unknown:
        raise web.HTTPBadRequest(reason=f"unknown key {unknown[0][:64]!r} in the silence")
    matchers = _matchers(body.get("matchers"))
    starts = _time(body["starts_at"], "starts_at") if "starts_at" in body else now
    has_duration = "duration_seconds" in body or "duration" in body
    if "ends_at" in body and has_duration:
        raise web.HTTPBadRequest(reason="give ends_at or duration_seconds, not both")
    if "ends_at" in body:
        ends = _time(body["ends_at"], "ends_at")
    elif has_duration:
        ends = starts + _duration(body.get("duration_seconds", body.get("duration")))
    else:
        raise web.HTTPBadRequest(reason="give ends_at or duration_seconds")
    if ends <= starts:
        raise web.HTTPBadRequest(reason="the silence ends before it starts")
    if ends - starts > MAX_SILENCE:
        raise web.HTTPBadRequest(reason="a silence lasts at most 366 days")
    if ends <= now:
        raise web.HTTPBadRequest(reason="the silence would already be over")
    if starts > now + MAX_SILENCE:
        raise web.HTTPBadRequest(reason="starts_at: at most 366 days ahead")
    return matchers, starts, ends


class AlertingApi:
    def __init__(self, service: AlertingService) -> None:
        self.service = service
        self._bad_silences: set[int] = set()

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
        incident_id = parse_id(request.match_info["id"], "incident")
        body = await read_json(request)
        unknown = sorted(set(body) - ACK_KEYS)
        if unknown:
            raise web.HTTPBadRequest(reason=f"unknown key {unknown[0][:64]!r} in the ack")
        by = _text(body, "by", MAX_BY, _CONTROL_OR_NEWLINE)
        comment = _text(body, "comment", MAX_COMMENT, _CONTROL)
        engine = self.service.engine
        assert engine is not None
        # A non-holder's incidents are a stale copy: the holder answers 404 itself.
        if self.service.holding and incident_id not in engine.state.incidents:
            raise web.HTTPNotFound(reason=f"no open incident {incident_id}")
        by = by or user or request.remote or "unknown"
        # How it came, for the timeline and the acknowledged notice: the CLI says so.
        via = "cli" if body.get("via") == "cli" else "api"
        incident = await self.service.acknowledge(incident_id, by, comment, via)
        return web.json_response(incident_json(engine, incident, time.time()))

    async def list_silences(self, request: web.Request) -> web.Response:
        await require_reader(request, self.service.config.agent.web)
        engine = self.service.engine
        assert engine is not None
        now = time.time()
        listed = []
        for silence in list(engine.state.silences.values()):
            try:
                if silence.ends_at > now:
                    listed.append(silence_json(silence))
            except (ValueError, OverflowError, OSError, TypeError) as exc:
                # One unrenderable row (from before silences were bounded) must not
                # take the listing down; it is named once per process.
                if silence.id not in self._bad_silences:
                    self._bad_silences.add(silence.id)
                    log.error("silence %s cannot be shown and is left out: %s", silence.id, exc)
        return web.json_response({"silences": listed})

    async def create_silence(self, request: web.Request) -> web.Response:
        user = await require_operator(request, self.service.config.agent.web)
        body = await read_json(request)
        matchers, starts, ends = parse_silence(body, time.time())
        comment = _text(body, "comment", MAX_COMMENT, _CONTROL)
        by = _text(body, "created_by", MAX_BY, _CONTROL_OR_NEWLINE)
        by = by or user or request.remote or "unknown"
        silence = await self.service.add_silence(matchers, starts, ends, comment, by)
        return web.json_response(silence_json(silence), status=201)

    async def delete_silence(self, request: web.Request) -> web.Response:
        await require_operator(request, self.service.config.agent.web)
        engine = self.service.engine
        assert engine is not None
        silence_id = parse_id(request.match_info["id"], "silence")
        if self.service.holding and silence_id not in engine.state.silences:
            raise web.HTTPNotFound(reason=f"no active silence {silence_id}")
        silence = await self.service.expire_silence(silence_id)
        return web.json_response(silence_json(silence))
