"""The outbox worker against a real SQLite store and a real webhook receiver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agent.state.sqlite import Store
from agent.state.sqlite_alerting import IncidentStore
from alerting.channels.base import ChannelConfig
from alerting.channels.interface import Channel
from alerting.channels.registry import build_channel
from alerting.channels.webhook import WebhookConfig
from alerting.model import EngineState, Notification, Outcome
from alerting.outbox import Backoff, Outbox
from tests.alerting_fixtures import Receiver
from tests.helpers import async_wait_until

FAST = Backoff(base=0.05, cap=0.3, fallback_after=3)


def note(i: int, channel: str) -> Notification:
    key = f"a/d/s/1/{i}"
    return Notification(key, channel, 1, "firing", time.time(), {"dedup_key": key, "n": i})


async def make(
    tmp: Path, configs: dict[str, ChannelConfig], uplink_down: bool = False
) -> tuple[IncidentStore, Outbox, Store]:
    store = Store(tmp)
    await store.open()
    istore = IncidentStore(store)
    channels: dict[str, Channel] = {n: build_channel(n, c) for n, c in configs.items()}
    outbox = Outbox(istore, channels, configs, lambda: uplink_down, FAST)
    return istore, outbox, store


def hook(url: str, **kw: Any) -> WebhookConfig:
    return WebhookConfig(type="webhook", url=url, **kw)


async def test_receiver_down_then_up_gets_everything_in_order(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # down: connection refused
    istore, outbox, store = await make(tmp_path, {"hook": hook(receiver.url, concurrency=1)})
    await istore.persist(Outcome(notifications=[note(i, "hook") for i in range(20)]), EngineState())
    outbox.start()
    try:
        await async_wait_until(lambda: outbox.outcomes[("hook", "retry")] >= 3, 5, "retries")
        assert receiver.received == []
        await receiver.start(port)
        await async_wait_until(lambda: len(receiver.received) == 20, 10, "all 20 delivered")
        assert [r["n"] for r in receiver.received] == list(range(20)), "in queue order"
        states = {s for _, _, s in await istore.deliveries()}
        assert states == {"delivered"}
        await outbox.refresh_pending()
        assert outbox.pending == {"hook": 0}
    finally:
        await outbox.stop()
        for channel in outbox.channels.values():
            await channel.close()
        await receiver.stop()
        await store.close()


async def test_uplink_down_hands_over_to_fallback(tmp_path: Path) -> None:
    primary, lan = Receiver(), Receiver()
    await primary.start()
    await lan.start()
    configs: dict[str, ChannelConfig] = {
        "cloud": hook(primary.url, requires_internet=True, fallback=("lan",)),
        "lan": hook(lan.url),
    }
    istore, outbox, store = await make(tmp_path, configs, uplink_down=True)
    await istore.persist(Outcome(notifications=[note(i, "cloud") for i in range(3)]), EngineState())
    outbox.start()
    try:
        await async_wait_until(lambda: len(lan.received) == 3, 5, "fallback deliveries")
        assert primary.received == []
        assert [r["dedup_key"] for r in lan.received] == [f"a/d/s/1/{i}" for i in range(3)]
        assert outbox.outcomes[("cloud", "skipped")] == 3
    finally:
        await outbox.stop()
        for channel in outbox.channels.values():
            await channel.close()
        await primary.stop()
        await lan.stop()
        await store.close()


@pytest.mark.parametrize(("status", "retried"), [(400, False), (503, True)])
async def test_failures_go_to_fallback(tmp_path: Path, status: int, retried: bool) -> None:
    primary, lan = Receiver(), Receiver()
    primary.status = status
    await primary.start()
    await lan.start()
    configs: dict[str, ChannelConfig] = {
        "cloud": hook(primary.url, fallback=("lan",)),
        "lan": hook(lan.url),
    }
    istore, outbox, store = await make(tmp_path, configs)
    await istore.persist(Outcome(notifications=[note(0, "cloud")]), EngineState())
    outbox.start()
    try:
        await async_wait_until(lambda: len(lan.received) == 1, 5, "fallback delivery")
        if retried:  # 5xx: the fallback after `fallback_after` attempts; the primary keeps trying
            assert outbox.outcomes[("cloud", "retry")] >= 3
            assert outbox.outcomes[("cloud", "failed")] == 0
            primary.status = 200
            await async_wait_until(lambda: len(primary.received) == 1, 5, "primary recovers")
        else:  # other 4xx: given up at once
            assert outbox.outcomes[("cloud", "failed")] == 1
            assert outbox.outcomes[("cloud", "retry")] == 0
        rows = await istore.deliveries()
        assert ("a/d/s/1/0", "lan", "delivered") in rows
    finally:
        await outbox.stop()
        for channel in outbox.channels.values():
            await channel.close()
        await primary.stop()
        await lan.stop()
        await store.close()


async def test_uplink_found_down_mid_send_hands_over_at_once(tmp_path: Path) -> None:
    """Issue 9, seen 12: the fallback waited out the primary's 10 s timeout."""
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()  # reads the request, never answers
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lan = Receiver()
    await lan.start()
    configs: dict[str, ChannelConfig] = {
        "cloud": hook(
            f"http://127.0.0.1:{port}/hook", requires_internet=True, fallback=("lan",), timeout=10.0
        ),
        "lan": hook(lan.url),
    }
    state = {"down": False}
    store = Store(tmp_path)
    await store.open()
    istore = IncidentStore(store)
    channels = {n: build_channel(n, c) for n, c in configs.items()}
    outbox = Outbox(istore, channels, configs, lambda: state["down"], FAST)
    await istore.persist(Outcome(notifications=[note(1, "cloud")]), EngineState())
    outbox.start()
    try:
        await asyncio.wait_for(connected.wait(), 5)
        state["down"] = True
        start = time.monotonic()
        await async_wait_until(lambda: lan.received, 5, "the fallback delivery")
        assert time.monotonic() - start < 5.0, "not after the primary's 10 s timeout"
        assert lan.received[0]["dedup_key"] == "a/d/s/1/1"
        assert outbox.outcomes[("cloud", "skipped")] == 1
    finally:
        await outbox.stop()
        for channel in outbox.channels.values():
            await channel.close()
        await lan.stop()
        server.close()
        await server.wait_closed()


def test_backoff_caps_at_thirty_seconds() -> None:
    backoff = Backoff()
    assert max(backoff.delay(n) for n in range(1, 40)) <= 30.0 * 1.2
