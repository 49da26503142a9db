"""GET /api/v1/fleet: the agents of the fleet, the engine holder and the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from agent.web.auth import require_reader

if TYPE_CHECKING:
    from agent.web.host import WebHost


class FleetApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/fleet", self.fleet)]

    async def fleet(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        return web.json_response(self.host.fleet.status())
