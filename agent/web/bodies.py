"""Request bodies and error answers, shared by every route module."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from agent.web.guard import BODY_TIMEOUT

MAX_BODY = 64 * 1024
MAX_JSON_DEPTH = 32  # no request body needs more; deeper ones are refused before any use


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
