"""The daemon: startup, main loop, reload and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.alerting_component import AlertingComponent
from agent.components import Component
from agent.config import Config
from agent.configload import ConfigError, read_config
from agent.drills_component import DrillsComponent
from agent.fleet_component import FleetComponent
from agent.history_component import HistoryComponent
from agent.metrics import AgentMetrics
from agent.readiness_component import ReadinessComponent
from agent.results import CheckState, ResultBook
from agent.runtime import Runtime
from agent.state.fleet import build_store
from agent.state.metrics import StoreCollector
from agent.state.postgres_errors import PostgresStoreError
from agent.state.sqlite import Store, StoreError
from agent.state.sqlite_alerting import read_state
from agent.store_outage import StoreOutageNotices, notify_failed_start
from agent.web.app import build_app, part_routes
from agent.web.guard import GuardedSite
from checks.base import CheckContext
from core.redact import redact_text

log = logging.getLogger("vaktpost.daemon")
STOP_GRACE = 4.0  # SIGTERM must end the process within 5 s


class Agent:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        self.book = ResultBook()
        self.metrics = AgentMetrics(self.book)
        # SQLite under state_dir; with agent.store everything the fleet shares (results,
        # check state, incidents, the outbox, history) is in that store instead.
        self.store = Store(config.agent.state_dir)
        built = build_store(config.agent)
        self.shared_store = None if isinstance(built, Store) else built
        if self.shared_store is not None:  # results say who ran them only in a fleet
            self.book.agent = config.agent.name
        self.ctx = CheckContext(
            Path(config.agent.state_dir),
            config.agent.name,
            store=self.shared_store or self.store,
            timezone=config.agent.timezone,
        )
        self.runtime = Runtime(
            self.book,
            self.ctx,
            config.agent.max_concurrency,
            self.metrics.scheduler_lag.observe,
            self.metrics.admission_wait.observe,
        )
        self.metrics.checks_waiting.set_function(lambda: self.runtime.runner.admission.waiting)
        # The one place that lists components, in start order (stopped in reverse).
        self.alerting = AlertingComponent(self)
        self.metrics.checks.failures = self.alerting.service.failures
        self.drills = DrillsComponent(self, self.alerting.service)
        self.readiness = ReadinessComponent(self, extras=[self.alerting.department_extras])
        self.history = HistoryComponent(self)
        self.fleet = FleetComponent(self)
        self.fleet.agent_listeners.append(self.alerting.service.observe_agents)
        self.alerting.service.results_listeners.append(self.fleet.absorb)
        self.fleet.members_listeners.append(self.alerting.service.observe_members)
        self.components: list[Component] = [
            self.alerting,
            self.drills,
            self.readiness,
            self.history,
            self.fleet,
            StoreOutageNotices(self),
        ]
        self._stop = asyncio.Event()
        self._dirty: dict[str, CheckState] = {}
        self._flush_failing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._reload_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------
    async def startup(self) -> None:
        # The daemon is the store's one writer: it alone may replace a damaged store.
        await self.store.open(recover=True, verify=(read_state,))
        self.store.start_probe()
        if self.shared_store is not None:
            # No probe of its own: the fleet's heartbeat (agent/fleet_component.py) writes
            # to it every third of a lease, and its outcome sets the store's health.
            await self.shared_store.open()
        self.metrics.registry.register(StoreCollector(self.shared_store or self.store))
        self.book.listeners.append(self._mark_dirty)
        # In a fleet nothing runs until membership says which checks are this agent's.
        self.runtime.apply(self.config.checks, self.fleet.assignment(self.config.checks))
        for component in self.components:
            await component.start()
            for collector in component.collectors():
                self.metrics.registry.register(collector)
        self._runner = web.AppRunner(
            build_app(self, part_routes(self)), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        host, port = self.config.agent.host_port
        site = GuardedSite(self._runner, host, port, ssl_context=server_tls(self.config))
        await site.start()
        self.runtime.start()
        self.metrics.reload_success.set(1)
        self.metrics.reload_timestamp.set(time.time())
        self._tasks = [
            asyncio.create_task(self._flush_results_forever()),
            asyncio.create_task(self._watchdog_forever()),
        ]
        sd_notify("READY=1")
        log.info(
            "vaktpost started",
            extra={
                "listen": self.config.agent.listen,
                "checks": len(self.config.checks),
                "config": self.config_path or "<default>",
            },
        )

    async def main_loop(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        await self.runtime.stop(grace=STOP_GRACE - 1.5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for component in reversed(self.components):
            try:
                await asyncio.wait_for(component.stop(), timeout=1.0)
            except Exception:
                log.exception("component did not stop cleanly")
        await self._flush_results()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.shared_store is not None:
            await self.shared_store.close()
        await self.store.close()
        log.info("vaktpost stopped")

    def request_stop(self) -> None:
        self._stop.set()

    # -- reload ----------------------------------------------------------------
    async def reload(self) -> tuple[bool, list[str]]:
        """Apply the config file whole or not at all; the old one keeps running on failure."""
        async with self._reload_lock:
            try:
                new = await asyncio.to_thread(read_config, self.config_path)
            except ConfigError as exc:
                return self._reload_failed("config reload rejected", [str(p) for p in exc.problems])
            except Exception as exc:  # a loader bug must not take the daemon down
                return self._reload_failed("config reload failed", [_reason(exc)])
            for key in ("listen", "state_dir", "max_concurrency"):
                if getattr(new.agent, key) != getattr(self.config.agent, key):
                    log.warning("agent.%s changed; it takes effect on restart", key)
            old, reloaded = self.config, list[Component]()
            try:
                self.config = new
                self.runtime.apply(new.checks, self.fleet.assignment(new.checks))
                for component in self.components:
                    reloaded.append(component)
                    component.reload(new)
            except Exception as exc:
                self._roll_back(old, reloaded)
                return self._reload_failed("config reload failed", [_reason(exc)])
            self.metrics.reload_success.set(1)
            self.metrics.reload_timestamp.set(time.time())
            log.info("config reloaded", extra={"checks": len(new.checks)})
            return True, []

    async def reload_by(self, actor: str) -> tuple[bool, list[str]]:
        """A reload, noted in the audit trail with who asked for it and the verdict."""
        ok, errors = await self.reload()
        verdict = "accepted" if ok else "rejected: " + "; ".join(errors)
        await self.history.audit(actor, "reload", self.config_path or "<default>", verdict[:1000])
        return ok, errors

    def _reload_failed(self, what: str, errors: list[str]) -> tuple[bool, list[str]]:
        self.metrics.reload_success.set(0)
        log.error(f"{what}; the old config keeps running", extra={"errors": "; ".join(errors)})
        return False, errors

    def _roll_back(self, old: Config, reloaded: list[Component]) -> None:
        """Undo a half-applied reload: the checks and every component told so far."""
        self.config = old
        try:
            self.runtime.apply(old.checks, self.fleet.assignment(old.checks))
            for component in reloaded:
                component.reload(old)
        except Exception as exc:  # nothing better to do than to say so, loudly
            log.error("rolling back a failed reload failed", extra={"error": _reason(exc)})

    # -- state for readers -----------------------------------------------------
    async def fresh_view(self) -> None:
        """In a fleet: what the other agents ran and what the engine holder committed,
        read now if older than a couple of seconds, for a request that reads them."""
        await self.fleet.fresh()
        await self.alerting.service.follow()

    def readiness_problems(self) -> list[str]:
        problems = []
        store = self.shared_store or self.store
        if not store.is_open:
            problems.append("state store is not open")
        elif not store.writable:
            problems.append(f"state store cannot write: {store.last_error}")
        return problems

    def check_results_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        me = self.config.agent.name if self.shared_store is None else None  # alone: it ran all
        for name, state in self.book.states.items():
            if state.result is None:
                out.append(
                    {
                        "name": name,
                        "type": state.config.type,
                        "status": None,
                        "message": "not run yet",
                        "duration_seconds": None,
                        "facts": {},
                    }
                )
            else:
                out.append(state.result.to_json(name, state.config.type))
            # Who ran it: in a fleet any agent; None while no live agent may run it.
            out[-1]["agent"] = me if me is not None else (state.agent or None)
        return out

    # -- persistence of results --------------------------------------------------
    def _mark_dirty(self, state: CheckState) -> None:
        self._dirty[state.config.name] = state

    async def _flush_results(self) -> None:
        dirty, self._dirty = self._dirty, {}
        rows = []
        for name, state in dirty.items():
            if state.result is not None:
                data = state.result.to_json(name, state.config.type)
                data["finished_at"] = state.result.finished_at
                rows.append((name, state.config.type, data))
        try:
            await (self.shared_store or self.store).save_results(rows)
        except Exception as exc:  # the store may be full or gone: keep running, say so
            # Written at the next flush that works; a newer result of a check wins.
            self._dirty = {**dirty, **self._dirty}
            if not self._flush_failing:  # once per outage, not every second of it
                log.error("could not persist results", extra={"error": str(exc)})
            self._flush_failing = True
            return
        if self._flush_failing and rows:
            log.info("results are persisted again", extra={"results": len(rows)})
        self._flush_failing = False

    async def _flush_results_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._flush_results()

    async def _watchdog_forever(self) -> None:
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        if not usec:
            return
        while True:
            await asyncio.sleep(usec / 2e6)
            # A stuck scheduler stops the pings, so systemd restarts the agent.
            if self.runtime.healthy:
                sd_notify("WATCHDOG=1")


def _reason(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")


def server_tls(config: Config) -> ssl.SSLContext | None:
    """HTTPS for the agent's own server when agent.web has a certificate (TLS 1.2+)."""
    web_config = config.agent.web
    if web_config.tls_cert_file is None or web_config.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(web_config.tls_cert_file, web_config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise OSError(f"cannot load agent.web TLS certificate: {exc}") from None
    return context


def sd_notify(message: str) -> None:
    """systemd's notify protocol, without the dependency: one datagram to NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


async def serve(config: Config, config_path: str | None) -> int:
    try:
        agent = Agent(config, config_path)
    except PostgresStoreError as exc:  # an unreadable store_password_file
        log.error("cannot start", extra={"error": str(exc)})
        return 1
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, agent.request_stop)
    loop.add_signal_handler(signal.SIGINT, agent.request_stop)
    reloads: set[asyncio.Task[Any]] = set()

    def on_hup() -> None:
        task = asyncio.ensure_future(agent.reload_by("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        await agent.startup()
    except (OSError, StoreError, PostgresStoreError) as exc:
        log.error("cannot start", extra={"error": str(exc)})
        if isinstance(exc, PostgresStoreError) and agent.shared_store is not None:
            # The fleet's store is down at start: say so once (a local queue), even
            # though this agent cannot run until it answers (the supervisor retries).
            await notify_failed_start(agent, str(exc))
        await agent.shutdown()
        return 1
    try:
        await agent.main_loop()
    finally:
        await agent.shutdown()
    return 0
