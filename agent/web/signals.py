"""Signals in: push pings (`/api/v1/push/...`) and Alertmanager's webhook (`/api/v1/alertmanager`).

Both are machine-to-machine: each request carries its own token (compared in
constant time, never logged or echoed), so the CSRF guard lets any body type
through (agent.web.csrf.machine_to_machine). A request changes state only once it
is fully valid; the state goes to the store, and the affected checks are run at
once so the verdict does not wait for their interval.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from agent.state.postgres_errors import is_store_error
from agent.web.bodies import json_error, read_json
from agent.web.csrf import machine_to_machine
from checks import alert, push
from checks.alert import AlertConfig, WebhookPayload
from checks.push import PushConfig

if TYPE_CHECKING:
    from agent.web.host import WebHost

log = logging.getLogger("vaktpost.signals")
_EXIT_STATUS = re.compile(r"^\d{1,3}$")


def offered_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def refuse(offered: str | None) -> web.Response:
    if offered is None:
        response = json_error(401, "token required: Authorization: Bearer TOKEN or ?token=TOKEN")
        response.headers["WWW-Authenticate"] = 'Bearer realm="vaktpost"'
        return response
    return json_error(403, "wrong token")


def validation_text(exc: ValidationError) -> str:
    """The first problem as `alerts.0.labels: reason`, never the offending value."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


class SignalsApi:
    def __init__(self, host: WebHost) -> None:
        self.host = host
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/api/v1/push/{check}", self.push),
            web.route("*", "/api/v1/push/{check}/{action}", self.push),
            web.post("/api/v1/alertmanager", self.alertmanager),
        ]

    # -- push ------------------------------------------------------------------
    @machine_to_machine
    async def push(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        name = request.match_info["check"]
        config = self._push_config(name)
        if config is None:
            return json_error(404, "no push check of that name")
        offered = offered_token(request)
        if offered is None or not config.token_matches(offered):
            return refuse(offered)
        action = request.match_info.get("action", "success")
        kind, exit_status = self._kind(action)
        body = await request.read()  # bounded by the app's client_max_size (413)
        message = push.clean_message(body, secret=offered)
        now = self.host.ctx.clock()
        try:
            async with self._locks[name]:
                await push.record_ping(self.host.ctx, name, kind, now, message, exit_status)
        except Exception as exc:
            if not is_store_error(exc):
                raise
            log.error("push not recorded", extra={"check": name, "error": str(exc)})
            return json_error(503, "state store cannot record the ping")
        self.host.runtime.run_now(name)
        return web.json_response({"status": "recorded", "check": name, "ping": action})

    def _push_config(self, name: str) -> PushConfig | None:
        for check in self.host.config.checks:
            if check.name == name and isinstance(check, PushConfig):
                return check
        return None

    @staticmethod
    def _kind(action: str) -> tuple[str, int | None]:
        if action in ("success", "start", "fail"):
            return action, None
        if _EXIT_STATUS.match(action) and int(action) <= 255:
            code = int(action)
            return ("success" if code == 0 else "fail"), code
        raise web.HTTPNotFound(reason="use /start, /fail or /EXIT_STATUS (0-255)")

    # -- Alertmanager ----------------------------------------------------------
    @machine_to_machine
    async def alertmanager(self, request: web.Request) -> web.Response:
        token_file = self.host.config.agent.web.alertmanager_token_file
        if token_file is None:
            return json_error(404, "not configured: set agent.web.alertmanager_token_file")
        offered = offered_token(request)
        if offered is None or not self._am_token_ok(Path(token_file), offered):
            return refuse(offered)
        try:
            payload = WebhookPayload.model_validate(await read_json(request))
            now = self.host.ctx.clock()
            entries = {alert.fingerprint(a): alert.entry_of(a, now) for a in payload.alerts}
        except ValidationError as exc:
            return json_error(400, f"not an Alertmanager v4 webhook: {validation_text(exc)}")
        except ValueError as exc:
            return json_error(400, f"not an Alertmanager v4 webhook: {exc}")
        if payload.truncatedAlerts:
            log.warning(
                "Alertmanager truncated its webhook: alerts beyond max_alerts are not seen",
                extra={"receiver": payload.receiver, "truncated": payload.truncatedAlerts},
            )
        try:
            changed = await self._ingest(entries, now)
        except Exception as exc:
            if not is_store_error(exc):
                raise
            log.error("alerts not recorded", extra={"error": str(exc)})
            return json_error(503, "state store cannot record the alerts")
        for check in self.host.config.checks:
            if isinstance(check, AlertConfig):
                self.host.runtime.run_now(check.name)
        log.info(
            "Alertmanager webhook",
            extra={"receiver": payload.receiver, "alerts": len(entries), "changed": changed},
        )
        return web.json_response({"status": "recorded", "alerts": len(entries), "changed": changed})

    @staticmethod
    def _am_token_ok(path: Path, offered: str) -> bool:
        try:
            expected = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            log.error("alertmanager_token_file unreadable", extra={"error": exc.strerror})
            return False
        return bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())

    async def _ingest(self, entries: dict[str, dict[str, Any]], now: float) -> int:
        store = self.host.ctx.store
        changed = 0

        def apply(value: Any) -> dict[str, Any]:
            nonlocal changed
            table = value if isinstance(value, dict) else {}
            changed = alert.ingest(table, entries, now)
            return table

        async with self._locks[alert.ALERTS_CHECK]:
            await store.update_state(alert.ALERTS_CHECK, alert.ALERTS_KEY, apply)
        return changed
