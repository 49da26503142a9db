"""Acknowledging from the message: POST /api/v1/ack-code (an SMS reply handed over by
`vaktpost sms-received`) and the signed ack links GET|POST /ack/{token}."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web.auth import require_operator
from agent.web.bodies import read_json
from agent.web.csrf import form_with_token
from alerting.acklinks import AckLink, LinkError
from alerting.forwarding import ForwardError
from alerting.model import Incident
from core.i18n import words

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
        async def confirm(request: web.Request) -> web.Response:
            return await self.link_post(request)

        # A form post from the page below: no JSON body type, but Origin and Referer
        # must still name this server (agent/web/csrf.py), and the token is checked.
        return [
            web.post("/api/v1/ack-code", self.ack_code),
            web.get("/ack/{token}", self.link_get),
            web.post("/ack/{token}", form_with_token(confirm)),
        ]

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

    # -- signed links ---------------------------------------------------------------------
    def _words(self) -> Mapping[str, str]:
        return words(self.host.config.agent.language)

    async def _open(self, request: web.Request) -> tuple[AckLink, Incident]:
        """The link's incident, still open; LinkError with the page to show otherwise."""
        service = self.host.alerting.service
        signer = service.link_signer
        if signer is None or service.engine is None:
            raise LinkError(self._words()["ack_page_off"], 404)
        link = signer.verify(request.match_info["token"], time.time())
        try:  # at a non-holder: as the holder last committed it
            incident = await service.forwarding.open_incident(link.incident_id)
        except ForwardError as exc:
            raise LinkError(str(exc), exc.status) from None
        if incident is None:
            raise LinkError(self._words()["ack_page_over"], 410)
        return link, incident

    async def link_get(self, request: web.Request) -> web.Response:
        """What is down and a confirm button; changes nothing (mail scanners open links)."""
        try:
            _, incident = await self._open(request)
        except LinkError as exc:
            return self._page(str(exc), exc.status)
        w = self._words()
        body = self._summary(incident)
        if incident.acked_by:
            body += f"<p>{html.escape(w['ack_page_already'].format(by=incident.acked_by))}</p>"
        body += f'<form method="post"><button type="submit">{w["ack"]}</button></form>'
        return self._page(body, 200, raw=True)

    async def link_post(self, request: web.Request) -> web.Response:
        try:
            link, incident = await self._open(request)
        except LinkError as exc:
            return self._page(str(exc), exc.status)
        w = self._words()
        if incident.acked_by:
            return self._page(w["ack_page_already"].format(by=incident.acked_by), 200)
        people = self.host.config.people
        person = link.person if link.person in people else None
        by = (people[person].name or person) if person else w["ack_page_by_link"]
        try:
            await self.host.alerting.service.acknowledge(incident.id, by, "", "link", person)
        except ForwardError as exc:  # at a non-holder: the holder's verdict, or none in time
            return self._page(str(exc), exc.status)
        log.info("acknowledged by link", extra={"incident": incident.id, "person": person})
        return self._page(w["ack_page_done"].format(by=by), 200)

    def _summary(self, incident: Incident) -> str:
        from alerting.text import local_time

        config, w = self.host.config, self._words()
        engine = self.host.alerting.service.engine
        assert engine is not None
        unit = engine.plan.units.get((incident.department, incident.system))
        what = unit.system_name if unit else incident.system
        if unit and unit.department_name:
            what = f"{unit.department_name}: {what}"
        since = local_time(incident.started_at, config.agent.timezone)
        return (
            f"<h1>{html.escape(w['ack_page_title'])}</h1>"
            f"<p><strong>{html.escape(what)}</strong></p>"
            f"<p>{html.escape(w['ack_page_since'].format(since=since))}</p>"
            f"<p>{html.escape(', '.join(incident.checks))}</p>"
        )

    def _page(self, body: str, status: int, raw: bool = False) -> web.Response:
        content = body if raw else f"<p>{html.escape(body)}</p>"
        page = (
            '<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>vaktpost</title></head><body>{content}</body></html>"
        )
        headers = {
            "Cache-Control": "no-store",
            # Same-origin keeps the form's Origin/Referer (the CSRF check reads them).
            "Referrer-Policy": "same-origin",
            "X-Robots-Tag": "noindex",
        }
        return web.Response(
            text=page, status=status, content_type="text/html", charset="utf-8", headers=headers
        )
