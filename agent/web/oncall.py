"""GET /api/v1/oncall, and who is on duty now and next for the console to show."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.web.auth import require_reader
from alerting.rotation import oncall_document
from core.i18n import words

if TYPE_CHECKING:
    from agent.config import Config
    from agent.web.host import WebHost


def oncall_now(config: Config, now: float | None = None) -> dict[str, Any]:
    """The on-call document (GET /api/v1/oncall) at `now` (default: the wall clock)."""
    at = time.time() if now is None else now
    return oncall_document(config.people, config.rotations, config.agent.timezone, at)


def render_oncall_section(config: Config, language: str, now: float | None = None) -> str:
    """An HTML <section> for the console: each rotation, who is on duty until when, who
    is next. Empty when no rotation is configured. Escaped; names only, no numbers."""
    from datetime import datetime

    from alerting.text import local_time

    doc = oncall_now(config, now)
    if not doc["rotations"]:
        return ""
    t = words(language)
    title, duty, until = t["oncall_title"], t["oncall_on_duty"], t["oncall_until"]
    nxt = t["oncall_next"]
    rows = []
    for entry in doc["rotations"]:
        ends = datetime.fromisoformat(entry["until"].replace("Z", "+00:00")).timestamp()
        rows.append(
            "<tr><th scope=row>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(entry["rotation"]),
                html.escape(entry["on_duty"]["name"]),
                html.escape(local_time(ends, config.agent.timezone)),
                html.escape(entry["next"]["name"]),
            )
        )
    head = f"<tr><th></th><th>{duty}</th><th>{until}</th><th>{nxt}</th></tr>"
    return f'<section class="oncall"><h2>{title}</h2><table>{head}{"".join(rows)}</table></section>'


class OncallApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/oncall", self.api_oncall)]

    async def api_oncall(self, request: web.Request) -> web.Response:
        await require_reader(request, self.host.config.agent.web)
        return web.json_response(oncall_now(self.host.config))
