"""Every channel passes the same contract: 5xx and 429 retry, other 4xx do not,
success is silent, and no secret appears in any error text or log line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerting.channels.alertmanager import AlertmanagerConfig
from alerting.channels.apprise import AppriseConfig
from alerting.channels.base import ChannelConfig
from alerting.channels.command import CommandChannelConfig
from alerting.channels.interface import Channel, PermanentError, RetryableError
from alerting.channels.registry import CHANNEL_CONFIGS, build_channel
from alerting.channels.webhook import WebhookConfig

SECRET = "Sup3rS3cretT0ken"
PAYLOAD: dict[str, Any] = {
    "version": 1,
    "dedup_key": "a/d/s/1/0",
    "incident_id": 1,
    "status": "firing",
    "department": "d",
    "system": "s",
    "agent": "a",
    "started_at": "2024-01-01T00:00:00Z",
    "created_at": "2024-01-01T00:00:00Z",
    "fallback": "paper",
    "text": "[ALERT] s\nis down",
}


class StatusServer:
    def __init__(self) -> None:
        self.status = 200
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.read())
        return web.Response(status=self.status, text=f"echo {request.path_qs}")


@pytest.fixture
async def server() -> AsyncIterator[StatusServer]:
    srv = StatusServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    srv.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    yield srv
    await runner.cleanup()


def webhook(port: int) -> ChannelConfig:
    return WebhookConfig(
        type="webhook",
        url=f"http://127.0.0.1:{port}/hook/{SECRET}?token={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}"},
    )


def alertmanager(port: int) -> ChannelConfig:
    return AlertmanagerConfig(type="alertmanager", urls=(f"http://u:{SECRET}@127.0.0.1:{port}",))


def apprise_json(port: int) -> ChannelConfig:
    return AppriseConfig(type="apprise", urls=(f"json://user:{SECRET}@127.0.0.1:{port}/p",))


# Every registered channel type, and the contract test it passes. A new type in
# alerting/channels/registry.py fails test_every_registered_channel_has_a_contract
# until it is listed here (and so runs the contract).
HTTP_CONTRACT: dict[str, Callable[[int], ChannelConfig]] = {
    "webhook": webhook,
    "alertmanager": alertmanager,
    "apprise": apprise_json,
}
OTHER_CONTRACTS = {
    "command": "test_command_channel_contract",
    "log": "test_log_channel_never_fails",
}
HTTP_CHANNELS: list[Callable[[int], ChannelConfig]] = list(HTTP_CONTRACT.values())


def test_every_registered_channel_has_a_contract() -> None:
    assert sorted([*HTTP_CONTRACT, *OTHER_CONTRACTS]) == sorted(CHANNEL_CONFIGS)
    for type_name, make in HTTP_CONTRACT.items():
        assert make(1).type == type_name
    for test_name in OTHER_CONTRACTS.values():
        assert callable(globals()[test_name])


@pytest.mark.parametrize("make", HTTP_CHANNELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (500, RetryableError),
        (502, RetryableError),
        (503, RetryableError),
        (429, RetryableError),
        (400, PermanentError),
        (401, PermanentError),
        (404, PermanentError),
    ],
)
async def test_http_channel_contract(
    server: StatusServer,
    make: Callable[[int], ChannelConfig],
    status: int,
    expected: type[Exception] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.status = status
    channel: Channel = build_channel("c", make(server.port))
    try:
        if expected is None:
            await channel.send(PAYLOAD)
            assert server.requests, "the request reached the server"
        else:
            with pytest.raises(expected) as info:
                await channel.send(PAYLOAD)
            assert SECRET not in str(info.value)
            assert str(status) in str(info.value)
    finally:
        await channel.close()
    assert SECRET not in caplog.text


@pytest.mark.parametrize("make", HTTP_CHANNELS, ids=lambda f: f.__name__)
async def test_connection_refused_retries_without_leaking(
    make: Callable[[int], ChannelConfig], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.helpers import free_port

    caplog.set_level(logging.DEBUG)
    channel = build_channel("c", make(free_port()))
    try:
        with pytest.raises(RetryableError) as info:
            await channel.send(PAYLOAD)
    finally:
        await channel.close()
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def command(tmp: Path, exit_code: int, sleep: float = 0.0) -> ChannelConfig:
    script = tmp / "send.py"
    script.write_text(
        "import sys, json, time\n"
        f"data = json.load(sys.stdin)\n"
        f"open({str(tmp / 'got.json')!r}, 'w').write(json.dumps(data))\n"
        f"time.sleep({sleep})\n"
        f"sys.stderr.write('modem says no\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    return CommandChannelConfig(
        type="command", argv=(sys.executable, str(script), SECRET), timeout=1.0
    )


@pytest.mark.parametrize(
    ("exit_code", "expected"),
    [
        (0, None),
        (1, RetryableError),
        (75, RetryableError),
        (64, PermanentError),
        (78, PermanentError),
    ],
)
async def test_command_channel_contract(
    tmp_path: Path,
    exit_code: int,
    expected: type[Exception] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = build_channel("sms", command(tmp_path, exit_code))
    if expected is None:
        await channel.send(PAYLOAD)
    else:
        with pytest.raises(expected) as info:
            await channel.send(PAYLOAD)
        assert f"exit {exit_code}" in str(info.value) and "modem says no" in str(info.value)
        assert SECRET not in str(info.value)
    got = json.loads((tmp_path / "got.json").read_text())
    assert got["dedup_key"] == PAYLOAD["dedup_key"], "the payload arrives on stdin"
    assert SECRET not in caplog.text


async def test_command_timeout_retries_and_missing_program_does_not(tmp_path: Path) -> None:
    slow = build_channel("sms", command(tmp_path, 0, sleep=5))
    with pytest.raises(RetryableError, match="timed out"):
        await slow.send(PAYLOAD)
    missing = build_channel(
        "sms", CommandChannelConfig(type="command", argv=(str(tmp_path / "nope"),))
    )
    with pytest.raises(PermanentError):
        await missing.send(PAYLOAD)


async def test_log_channel_never_fails(caplog: pytest.LogCaptureFixture) -> None:
    from alerting.channels.log import LogConfig

    caplog.set_level(logging.INFO)
    await build_channel("log", LogConfig(type="log")).send(PAYLOAD)
    assert "[ALERT] s" in caplog.text
