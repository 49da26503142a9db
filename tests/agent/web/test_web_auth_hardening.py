"""Logins (issue 9, item 9): uniform answers, lockout per address, a short success cache.

The agent's real app and listener on loopback, with an injected clock for the
lockout window; statuses and bcrypt calls are asserted, never timings.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import bcrypt
import pytest
from aiohttp import web

from agent.configload import load_config_text
from agent.web.app import build_app
from agent.web.auth import GUARD_KEY, MAX_FAILURES, LoginGuard, bcrypt_cost, client_key
from agent.web.guard import GuardedSite
from tests.helpers import daemon, free_port, wait_until

if TYPE_CHECKING:
    from agent.daemon import Agent

COST = 5
OPS_PASSWORD = "p" * 60  # long, but within bcrypt's 72 bytes
OPS_HASH = bcrypt.hashpw(OPS_PASSWORD.encode(), bcrypt.gensalt(rounds=COST)).decode()
CONFIG = f"""
agent:
  listen: 127.0.0.1:9
  web:
    read_requires_auth: true
    users:
      ops: {{password_hash: "{OPS_HASH}", role: operator}}
      broken: {{password_hash: "not-a-bcrypt-hash", role: operator}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StubAgent:
    """What the /api/v1/checks route reads of an agent; auth is the code under test."""

    def __init__(self) -> None:
        self.config = load_config_text(CONFIG, "<test>")

    def check_results_json(self) -> list[dict[str, Any]]:
        return []

    async def fresh_view(self) -> None:
        pass  # alone: nothing to read


class Server:
    def __init__(self, url: str, clock: Clock, guard: LoginGuard) -> None:
        self.url, self.clock, self.guard = url, clock, guard

    async def get(self, user: str | None, password: str = "") -> tuple[int, Any]:
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.url + "/api/v1/checks", headers=headers) as r,
        ):
            return r.status, {"body": await r.json(), "headers": dict(r.headers)}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    clock = Clock()
    guard = LoginGuard(clock=clock)
    app = build_app(cast("Agent", StubAgent()))
    app[GUARD_KEY] = guard
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Server(f"http://127.0.0.1:{site.port}", clock, guard)
    finally:
        await runner.cleanup()


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The hash every bcrypt.checkpw call was given."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    yield calls


async def test_unknown_users_and_long_passwords_are_401_after_the_same_work(
    server: Server, bcrypt_calls: list[bytes]
) -> None:
    attempts = [
        ("ops", "x" * 100),  # over 72 bytes: was 500
        ("ops", "ö" * 40),  # 80 bytes in UTF-8
        ("nobody", "x" * 100),
        ("nobody", "short"),
        ("ops", "nul\0byte"),
        ("broken", "anything"),  # a hash that is not bcrypt: was 500
        ("", ""),
    ]
    for user, password in attempts:
        status, answer = await server.get(user, password)
        assert status == 401, (user, answer)
        assert answer["body"] == {"error": "invalid user or password"}
        assert answer["headers"]["WWW-Authenticate"] == 'Basic realm="vaktpost"'
    # One bcrypt check each, all at the configured users' cost: no fast path to time.
    assert len(bcrypt_calls) == len(attempts)
    assert {bcrypt_cost(h.decode()) for h in bcrypt_calls} == {COST}


async def test_failures_lock_the_address_out_until_the_window_passes(
    server: Server, bcrypt_calls: list[bytes]
) -> None:
    for _ in range(MAX_FAILURES):
        assert (await server.get("ops", "wrong"))[0] == 401
    checks = len(bcrypt_calls)
    for password in ("wrong", OPS_PASSWORD):  # the right one too: no confirmation of a guess
        status, answer = await server.get("ops", password)
        assert status == 429, answer
        assert 1 <= int(answer["headers"]["Retry-After"]) <= 60
        assert "too many failed logins" in answer["body"]["error"]
    assert len(bcrypt_calls) == checks, "a locked-out address costs no bcrypt"
    assert (await server.get(None))[0] == 401, "no credentials is not a guess"
    server.clock.now += 61
    assert (await server.get("ops", OPS_PASSWORD))[0] == 200


async def test_parallel_guesses_count_before_they_finish(server: Server) -> None:
    answers = await asyncio.gather(*(server.get("ops", f"guess{i}") for i in range(30)))
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(401) == MAX_FAILURES
    assert statuses.count(429) == 30 - MAX_FAILURES


async def test_successful_logins_are_cached_briefly(
    server: Server, bcrypt_calls: list[bytes]
) -> None:
    for _ in range(5):
        assert (await server.get("ops", OPS_PASSWORD))[0] == 200
    assert len(bcrypt_calls) == 1, "a polling dashboard pays bcrypt once a minute"
    assert (await server.get("ops", OPS_PASSWORD + "x"))[0] == 401, "keyed on the password"
    server.clock.now += 61
    assert (await server.get("ops", OPS_PASSWORD))[0] == 200
    assert len(bcrypt_calls) == 3


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
    ],
)
def test_failures_count_per_address_and_ipv6_64(remote: str | None, key: str) -> None:
    assert client_key(remote) == key


def test_daemon_brute_force_gets_429(tmp_path: Path) -> None:
    port = free_port()
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"agent:\n  listen: 127.0.0.1:{port}\n  state_dir: {tmp_path}/s\n"
        f"  web:\n    users:\n      ops: {{password_hash: '{hashed}', role: operator}}\n"
        "checks: [{name: mem, type: memory, interval: 1s}]\n"
    )

    def reload(password: str) -> tuple[int, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        token = base64.b64encode(f"ops:{password}".encode()).decode()
        headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
        try:
            conn.request("POST", "/-/reload", None, headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("Retry-After")
        finally:
            conn.close()

    with daemon(cfg, tmp_path / "d.log"):
        wait_until(lambda: _healthy(port), 15, "the agent")
        statuses = [reload(f"guess{i}")[0] for i in range(300)]
        assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES
        assert set(statuses[MAX_FAILURES:]) == {429}
        status, retry_after = reload("right")
        assert status == 429 and retry_after is not None and int(retry_after) > 0


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
