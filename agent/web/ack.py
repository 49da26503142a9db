"""Acknowledging from the message: POST /api/v1/ack-code (an SMS reply handed over by
`vaktpost sms-received`) and the signed ack links GET|POST /ack/{token}."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web.auth import require_operator
from agent.web.bodies import read_json

if TYPE_CHECKING:
    from agent.web.host import WebHost

log = logging.getLogger("vaktpost.ack")
MAX_FIELD = 1000  # an SMS is 160 characters; a concatenated one a few of those


def _field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD:
        raise web.HTTPBadRequest(reason=f"{key}: a non-empty string of at most {MAX_FIELD}")
    return value


class AckApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/ack-code", self.ack_code)]

    async def ack_code(self, request: web.Request) -> web.Response:
        """`{"code", "from"}`: `code` is the reply as sent ("K 4711", "4711 on my way")."""
        await require_operator(request, self.host.config.agent.web)
        body = await read_json(request)
        unknown = sorted(set(body) - {"code", "from"})
        if unknown:
            raise web.HTTPBadRequest(reason=f"unknown key {unknown[0][:64]!r}")
        text, number = _field(body, "code"), _field(body, "from")
        service = self.host.alerting.service
        if service.engine is None:
            raise web.HTTPServiceUnavailable(reason="alerting is starting")
        reply = await service.acknowledge_code(text, number)
        if not reply.acknowledged:
            # A drill's code is five digits and no incident's: try the drills.
            drills = getattr(self.host, "drills", None)
            if drills is not None:
                drill_reply = await drills.acknowledge_code(text, number)
                if drill_reply is not None:
                    reply = drill_reply
        return web.json_response(
            {
                "acknowledged": reply.acknowledged,
                "message": reply.message,
                "incident_id": reply.incident_id,
            }
        )
