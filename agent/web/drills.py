"""Channel drills over HTTP: GET /api/v1/drills, POST /api/v1/drills/{name}/run (operator),
and a drill's signed ack link GET|POST /drill-ack/{name}/{token}."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from aiohttp import web

from agent.web.auth import require_operator, require_reader
from agent.web.csrf import form_with_token
from alerting.acklinks import LinkError
from core.i18n import text

if TYPE_CHECKING:
    from agent.drills_component import DrillsComponent
    from agent.web.host import WebHost


class DrillsApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    @property
    def drills(self) -> DrillsComponent:
        component: DrillsComponent | None = getattr(self.host, "drills", None)
        if component is None:
            raise web.HTTPServiceUnavailable(reason="drills are not running")
        return component

    def routes(self) -> list[web.RouteDef]:
        async def confirm(request: web.Request) -> web.Response:
            return await self.link_post(request)

        return [
            web.get("/api/v1/drills", self.list_drills),
            web.post("/api/v1/drills/{name}/run", self.run),
            web.get("/drill-ack/{name}/{token}", self.link_get),
            # A form post: no JSON body, but same-origin is still required (agent/web/csrf.py).
            web.post("/drill-ack/{name}/{token}", form_with_token(confirm)),
        ]

    async def list_drills(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        return web.json_response({"drills": self.drills.document()})

    async def run(self, request: web.Request) -> web.Response:
        await require_operator(request, self.host.config.agent.web)
        name = request.match_info["name"]
        if self.drills.drill(name) is None:
            raise web.HTTPNotFound(reason=f"no drill named {name[:64]!r}")
        if self.host.alerting.service.engine is None:
            raise web.HTTPServiceUnavailable(reason="alerting is starting")
        run = await self.drills.run_now(name)
        return web.json_response(run.document())

    def _text(self, key: str, **params: str) -> str:
        return html.escape(text(self.host.config.agent.language, key, **params))

    async def link_get(self, request: web.Request) -> web.Response:
        """What the drill is and a confirm button; changes nothing (mail scanners open links)."""
        name, token = request.match_info["name"], request.match_info["token"]
        try:
            _, run = await self.drills.open_link(name, token)
        except LinkError as exc:
            return _page(html.escape(str(exc)), exc.status)
        body = f"<h1>{self._text('drill_page_title')}</h1><p>{html.escape(name)}</p>"
        if run.acked_by is not None:
            body += f"<p>{self._text('drill_page_already', by=run.acked_by)}</p>"
        button = self._text("drill_page_button")
        body += f'<form method="post"><button type="submit">{button}</button></form>'
        return _page(body, 200)

    async def link_post(self, request: web.Request) -> web.Response:
        name, token = request.match_info["name"], request.match_info["token"]
        try:
            by = await self.drills.acknowledge_link(name, token)
        except LinkError as exc:
            return _page(html.escape(str(exc)), exc.status)
        return _page(f"<p>{self._text('drill_page_done', by=by)}</p>", 200)


def _page(body: str, status: int) -> web.Response:
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>vaktpost</title></head><body>{body}</body></html>"
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    return web.Response(
        text=page, status=status, content_type="text/html", charset="utf-8", headers=headers
    )
