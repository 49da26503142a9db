"""GET /api/v1/departments and the printable /readiness page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from agent.web import readiness_render
from agent.web.auth import require_reader

if TYPE_CHECKING:
    from agent.web.host import WebHost


class ReadinessApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/departments", self.api_departments),
            web.get("/readiness", self.printable),
        ]

    async def api_departments(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        return web.json_response(self.host.readiness.document())

    async def printable(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        department = request.query.get("department")
        try:
            doc = self.host.readiness.document(department)
        except KeyError:
            raise web.HTTPNotFound(reason=f"unknown department {department!r}") from None
        page = readiness_render.page(doc, self.host.config.agent.language)
        return web.Response(text=page, content_type="text/html", charset="utf-8")
