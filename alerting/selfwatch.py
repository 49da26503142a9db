"""Self-watch: ping a dead man's switch, and poll peer agents' /healthz.

A silent peer becomes a check-like result for the engine (name from
`peer_check_name`), so it gets an incident with the default ladder.

Neither loop may ever end on its own or hold up the agent: every failure is
logged (the URL reduced to scheme://host:port, since heartbeat URLs carry a
token in their path or query) and the loop carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from alerting.channels.interface import safe_url
from alerting.plan import peer_check_name

log = logging.getLogger("vaktpost.selfwatch")
# The heartbeat starts with the alerting component, a moment before the check
# scheduler: how long a not-yet-healthy scheduler counts as starting, not stuck.
START_GRACE = 10.0
Observe = Callable[[str, str, str, float], None]


async def ping_once(session: aiohttp.ClientSession, url: str) -> str | None:
    """None when the receiver took the ping (status < 400), else a loggable reason."""
    try:
        async with session.get(url) as response:
            await response.read()
            return None if response.status < 400 else f"HTTP {response.status}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # any failure is the receiver's problem, never the agent's
        return type(exc).__name__


async def heartbeat_forever(
    url: str, interval: float, probe_timeout: float, healthy: Callable[[], bool] = lambda: True
) -> None:
    """GET `url` every `interval` seconds (on a fixed cadence; a slow ping delays only itself).

    No ping while `healthy()` is false: a dead man's switch must also fire when the
    agent still runs but its scheduler no longer probes anything. The first ping
    waits up to START_GRACE for the scheduler to start, then goes out at once.
    """
    timeout = aiohttp.ClientTimeout(total=min(probe_timeout, max(interval, 1.0)))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        due = time.monotonic()
        starting_until = due + START_GRACE
        while True:
            if not healthy() and time.monotonic() < starting_until:
                await asyncio.sleep(0.05)  # the runtime has no start event to wait on
                continue
            starting_until = 0.0
            if not healthy():
                log.warning("heartbeat withheld: the scheduler is not running checks")
            elif (problem := await ping_once(session, url)) is not None:
                log.warning("heartbeat failed", extra={"url": safe_url(url), "error": problem})
            due = max(due + interval, time.monotonic())
            await asyncio.sleep(due - time.monotonic())


async def probe_peer(session: aiohttp.ClientSession, url: str) -> str | None:
    """None when the peer answers /healthz with 2xx, else why not."""
    try:
        async with session.get(url.rstrip("/") + "/healthz") as response:
            await response.read()
            return None if response.status < 300 else f"/healthz answered {response.status}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return f"no answer ({type(exc).__name__})"


async def peers_forever(
    peers: tuple[str, ...],
    interval: float,
    probe_timeout: float,
    up: dict[str, bool],
    observe: Observe,
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=probe_timeout)) as session:
        while True:
            problems = await asyncio.gather(*(probe_peer(session, url) for url in peers))
            now = time.time()
            for url, problem in zip(peers, problems, strict=True):
                up[url] = problem is None
                status = "ok" if problem is None else "critical"
                message = f"peer {safe_url(url)} " + (problem or "is up")
                observe(peer_check_name(url), status, message, now)
            await asyncio.sleep(interval)
