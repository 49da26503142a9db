"""The HTTP server: /metrics, health, the JSON API and the status page.

Handlers only read state, or send commands through the agent's methods.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.auth import GUARD_KEY, LoginGuard, require_operator, require_reader
from agent.csrf import cross_site_reason
from agent.metrics import CONTENT_TYPE
from agent.statuspage import render_status_page
from agent.webguard import BODY_TIMEOUT, KEEPALIVE_TIMEOUT, request_in_progress

if TYPE_CHECKING:
    from agent.daemon import Agent

log = logging.getLogger("vaktpost.web")
MAX_BODY = 64 * 1024
MAX_JSON_DEPTH = 32  # no request body needs more; deeper ones are refused before any use
AGENT_KEY: web.AppKey[Agent] = web.AppKey("agent")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); 400 with the reason otherwise."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            raw = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason="request body not received in time") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise web.HTTPBadRequest(reason="invalid JSON body: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(reason=f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the JSON body must be an object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise web.HTTPBadRequest(
            reason=f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels"
        )
    return body


def agent_of(request: web.Request) -> Agent:
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
    await require_operator(request, agent_of(request).config.agent.web)
    ok, errors = await agent_of(request).reload()
    if not ok:
        return web.json_response({"error": "config rejected", "problems": errors}, status=400)
    return web.json_response({"status": "reloaded"})


async def status_page(request: web.Request) -> web.Response:
    await require_reader(request, agent_of(request).config.agent.web)
    html = render_status_page(agent_of(request))
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def build_app(agent: Agent, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[errors_as_json],
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
