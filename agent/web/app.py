"""The HTTP application: /metrics, health, reload, the status page, and the
routes of agent/web/alerting.py, readiness.py and signals.py.

Handlers only read state, or send commands through the host's methods. In a fleet
a read first brings the agent's view of the others up to date (`fresh_view`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from agent.metrics import CONTENT_TYPE
from agent.web.ack import AckApi
from agent.web.alerting import AlertingApi
from agent.web.auth import GUARD_KEY, LoginGuard, require_operator, require_reader
from agent.web.bodies import MAX_BODY, json_error
from agent.web.csrf import cross_site_reason
from agent.web.drills import DrillsApi
from agent.web.fleet import FleetApi
from agent.web.guard import KEEPALIVE_TIMEOUT, request_in_progress
from agent.web.history import HistoryApi
from agent.web.oncall import OncallApi
from agent.web.readiness import ReadinessApi
from agent.web.signals import SignalsApi
from agent.web.significant import SignificantApi
from agent.web.statuspage import console_of, render_status_page
from alerting.forwarding import ForwardError

if TYPE_CHECKING:
    from agent.web.host import WebHost

log = logging.getLogger("vaktpost.web")
AGENT_KEY: web.AppKey[WebHost] = web.AppKey("agent")
# A read waits at most this long for a fleet agent's view to be brought up to date:
# a store that does not answer must not hold /metrics or the console; they are then
# served from memory, and the read finishes in the background.
VIEW_WAIT = 1.0
# Reads that show nothing of the fleet's results or incidents.
OWN_READS = ("/healthz", "/readyz", "/api/v1/push/")


@web.middleware
async def fresh_view(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    agent = agent_of(request)
    # Alone there is nothing to read: no task per scrape.
    fleet = agent.config.agent.store is not None
    if fleet and request.method in ("GET", "HEAD") and not request.path.startswith(OWN_READS):
        read = asyncio.ensure_future(_fresh_view(agent))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(read), VIEW_WAIT)
    return await handler(request)


async def _fresh_view(agent: WebHost) -> None:
    try:
        await agent.fresh_view()
    except Exception:  # the read is an extra: the answer comes from memory then
        log.exception("reading the fleet's view failed")


@web.middleware
async def errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    with request_in_progress(request):
        return await _answer(request, handler)


async def _answer(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # Checked up front: handlers that ignore the body must not accept a huge one either.
    if request.content_length is not None and request.content_length > MAX_BODY:
        return json_error(413, f"request body over {MAX_BODY} bytes")
    refused = cross_site_reason(request)
    if refused is not None:
        return json_error(403, refused)
    try:
        return await handler(request)
    except ForwardError as exc:  # the engine holder's verdict, or why none came
        return json_error(exc.status, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, f"request body over {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason)
        # Keep what the exception says beyond its body (WWW-Authenticate on a 401,
        # Allow on a 405): only the body becomes JSON.
        for key, value in exc.headers.items():
            if key not in ("Content-Type", "Content-Length"):
                response.headers[key] = value
        return response
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return json_error(500, "internal error")


def agent_of(request: web.Request) -> WebHost:
    return request.app[AGENT_KEY]


async def metrics(request: web.Request) -> web.Response:
    await require_reader(request, agent_of(request).config.agent.web)
    body = agent_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    agent = agent_of(request)
    problems = agent.readiness_problems()
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def api_checks(request: web.Request) -> web.Response:
    await require_reader(request, agent_of(request).config.agent.web)
    return web.json_response({"checks": agent_of(request).check_results_json()})


async def reload(request: web.Request) -> web.Response:
    user = await require_operator(request, agent_of(request).config.agent.web)
    ok, errors = await agent_of(request).reload_by(user or request.remote or "unknown")
    if not ok:
        return web.json_response({"error": "config rejected", "problems": errors}, status=400)
    return web.json_response({"status": "reloaded"})


async def status_page(request: web.Request) -> web.Response:
    await require_reader(request, agent_of(request).config.agent.web)
    html = await render_status_page(agent_of(request), request)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def part_routes(agent: WebHost) -> list[web.RouteDef]:
    """The routes of the host's parts: alerting, readiness, signals in."""
    return [
        *AlertingApi(agent.alerting.service).routes(),
        *ReadinessApi(agent).routes(),
        *SignalsApi(agent).routes(),
        *OncallApi(agent).routes(),
        *AckApi(agent).routes(),
        *DrillsApi(agent).routes(),
        *HistoryApi(agent, agent.history).routes(),
        *SignificantApi(agent).routes(),
        *FleetApi(agent).routes(),
        *console_of(agent).routes(),
    ]


def build_app(agent: WebHost, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
    """The agent's own routes plus `extra_routes` (the daemon passes part_routes)."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[errors_as_json, fresh_view],
        handler_args={"keepalive_timeout": KEEPALIVE_TIMEOUT},
    )
    app[AGENT_KEY] = agent
    app[GUARD_KEY] = LoginGuard()
    app.add_routes(
        [
            web.get("/metrics", metrics),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/api/v1/checks", api_checks),
            web.post("/-/reload", reload),
            web.get("/", status_page),
            *(extra_routes or []),
        ]
    )
    return app
