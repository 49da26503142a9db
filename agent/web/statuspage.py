"""`GET /`: the operator console (agent/web/console.py renders it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.web.console import ConsolePages, who

if TYPE_CHECKING:
    from aiohttp import web

    from agent.web.host import WebHost


async def render_status_page(agent: WebHost, request: web.Request) -> str:
    pages = console_of(agent)
    user, operator = await who(request, agent)
    return await pages.console(request, user, operator)


def console_of(agent: WebHost) -> ConsolePages:
    """One ConsolePages per host: its CSRF key must be the one the ack form checks."""
    pages = _PAGES.get(id(agent))
    if pages is None or pages.host is not agent:
        pages = _PAGES[id(agent)] = ConsolePages(agent, agent.history)
    return pages


_PAGES: dict[int, ConsolePages] = {}
