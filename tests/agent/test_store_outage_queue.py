"""The store outage notices of one agent (agent/store_outage.py) on an injected clock:
one notice per outage after the confirm time, a local queue that survives a restart
(queued but unsent: sent after it; sent: never again), channels that fail or hang
never hold up the others, `run_on`, person targets, the uplink and fallbacks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import agent.store_outage as store_outage
from agent.config import Config
from agent.results import ResultBook
from agent.store_outage import StoreOutageNotices, notify_failed_start
from agent.store_outage_queue import QUEUE_FILE
from alerting.channels.base import ChannelConfig
from alerting.channels.interface import Channel, PermanentError, RetryableError
from alerting.channels.registry import build_channel
from alerting.outbox import Backoff
from checks.base import CheckResult
from core.status import Status
from tests.alerting_fixtures import Receiver, config_from
from tests.helpers import async_wait_until

CONFIRM = 5.0
NO_JITTER = Backoff(base=1.0, cap=30.0, jitter=0.0, fallback_after=3)

CONFIG = """
agent:
  name: srv-a
  state_dir: {state}
  language: en
channels:
  ops: {{type: log, default: true}}
  modem: {{type: log, default: true, run_on: ["srv-b"]}}
  dept: {{type: log}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: 9}}
"""


@dataclass
class FakeStore:
    """The PostgresStore's health, as the watch reads it."""

    writable: bool = True
    last_error: str = ""
    where: str = "host=db1 dbname=vaktpost"


@dataclass
class FakeHost:
    config: Config
    shared_store: FakeStore = field(default_factory=FakeStore)
    book: ResultBook = field(default_factory=ResultBook)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now - 1_700_000_000.0


class Channels:
    """What every channel was sent, and how each one behaves: ok, permanent, retry,
    crash (a bug in the channel) or hang."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.mode: dict[str, str] = {}
        self.closed = 0

    def build(self, name: str, config: ChannelConfig) -> Channel:
        return _Channel(self, name)

    def to(self, name: str) -> list[str]:
        return [str(p["store_outage"]) for n, p in self.sent if n == name]


class _Channel:
    def __init__(self, owner: Channels, name: str) -> None:
        self.owner = owner
        self.name = name

    async def send(self, payload: dict[str, Any]) -> None:
        mode = self.owner.mode.get(self.name, "ok")
        if mode == "permanent":
            raise PermanentError(f"{self.name}: exit 78")
        if mode == "retry":
            raise RetryableError(f"{self.name}: HTTP 503")
        if mode == "crash":
            raise RuntimeError("a bug")
        if mode == "hang":
            await asyncio.Event().wait()
        self.owner.sent.append((self.name, payload))

    async def close(self) -> None:
        self.owner.closed += 1


def make(
    tmp_path: Path, yaml: str = CONFIG, host: FakeHost | None = None
) -> tuple[StoreOutageNotices, FakeHost, Clock, Channels]:
    config = config_from(yaml.format(state=tmp_path / "state"))
    (tmp_path / "state").mkdir(exist_ok=True)
    host = host or FakeHost(config)
    clock, channels = Clock(), Channels()
    watch = StoreOutageNotices(
        host,  # type: ignore[arg-type]
        confirm=CONFIRM,
        clock=clock.wall,
        monotonic=clock.mono,
        backoff=NO_JITTER,
        build=channels.build,
    )
    return watch, host, clock, channels


async def run_for(watch: StoreOutageNotices, clock: Clock, seconds: float) -> None:
    """Looks every half second, as the running watch does."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now += 0.5
        await watch.step()


async def test_one_notice_per_outage_after_the_confirm_time_and_one_when_it_is_back(
    tmp_path: Path,
) -> None:
    watch, host, clock, channels = make(tmp_path)
    await watch.start()
    await watch.stop()  # driven by hand below, on the injected clock
    host.shared_store.writable, host.shared_store.last_error = False, "connection refused"
    await run_for(watch, clock, CONFIRM - 1)
    assert channels.sent == [], "a short failure is no outage"
    await run_for(watch, clock, 60)
    assert channels.to("ops") == ["unreachable"], "one notice, not one per look"
    assert channels.to("modem") == [], "run_on pins modem to srv-b: not this agent's"
    assert channels.to("dept") == [], "only the default ladder's channels when there is one"
    payload = channels.sent[0][1]
    assert payload["system"] == "vaktpost-state-store"
    assert payload["status"] == "critical" and payload["agent"] == "srv-a"
    assert "state store unreachable" in payload["text"]
    assert "connection refused" in payload["text"]
    assert payload["dedup_key"].startswith("srv-a/-/vaktpost-state-store/outage-")
    # A store that writes for a moment and fails again is the same outage.
    host.shared_store.writable = True
    await run_for(watch, clock, CONFIRM - 1)
    host.shared_store.writable = False
    await run_for(watch, clock, 30)
    assert channels.to("ops") == ["unreachable"]
    host.shared_store.writable = True
    await run_for(watch, clock, 30)
    assert channels.to("ops") == ["unreachable", "back"]
    back = channels.sent[1][1]
    assert back["status"] == "resolved" and back["resolved_at"] is not None
    assert back["started_at"] == payload["started_at"], "the same outage's start"
    assert back["downtime_seconds"] > 60
    lines = [m.samples for m in watch.collectors()[0].collect()]
    flat = {(s.name, tuple(sorted(s.labels.items()))): s.value for group in lines for s in group}
    assert flat[("vaktpost_store_outage", ())] == 0.0
    assert flat[("vaktpost_store_outage_notices_total", (("kind", "unreachable"),))] == 1.0
    assert flat[("vaktpost_store_outage_notices_total", (("kind", "back"),))] == 1.0
    key = ("vaktpost_store_outage_deliveries_total", (("channel", "ops"), ("outcome", "delivered")))
    assert flat[key] == 2.0
    assert flat[("vaktpost_store_outage_queue", ())] == 0.0
    # A second outage is a second notice, with its own dedup key.
    host.shared_store.writable = False
    await run_for(watch, clock, 10)
    assert channels.to("ops") == ["unreachable", "back", "unreachable"]
    assert channels.sent[2][1]["dedup_key"] != payload["dedup_key"]


async def test_a_restart_sends_what_was_queued_and_never_what_was_sent(tmp_path: Path) -> None:
    watch, host, clock, channels = make(tmp_path)
    host.shared_store.writable = False
    channels.mode["ops"] = "retry"
    await run_for(watch, clock, CONFIRM + 1)
    assert channels.sent == [] and watch.queue.pending() == 1
    queued = json.loads((tmp_path / "state" / QUEUE_FILE).read_text())
    assert queued["outage"] is not None and queued["notices"][0]["kind"] == "unreachable"

    # The agent restarts during the outage (kill -9: nothing more than the file).
    again, _, _, channels2 = make(tmp_path, host=host)
    again.clock, again.monotonic = clock.wall, clock.mono
    await again.start()
    await again.stop()
    await run_for(again, clock, 60)
    assert channels2.to("ops") == ["unreachable"], "queued but unsent: sent after the restart"
    assert again.notices_total["unreachable"] == 0, "the open outage is not queued twice"

    third, _, _, channels3 = make(tmp_path, host=host)
    third.clock, third.monotonic = clock.wall, clock.mono
    await third.start()
    await third.stop()
    await run_for(third, clock, 60)
    assert channels3.sent == [], "sent before the restart: never again"
    host.shared_store.writable = True
    await run_for(third, clock, CONFIRM + 1)
    assert channels3.to("ops") == ["back"], "the outage the file remembers ends once"


async def test_a_failing_or_hanging_channel_never_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_outage, "SEND_SLACK", 1.0)
    yaml = CONFIG.replace(
        "  ops: {{type: log, default: true}}",
        "  stuck: {{type: log, default: true, timeout: 0.1s}}\n"
        "  ops: {{type: log, default: true}}\n"
        "  bad: {{type: log, default: true}}\n"
        "  buggy: {{type: log, default: true}}\n"
        "  flaky: {{type: log, default: true}}",
    )
    watch, host, clock, channels = make(tmp_path, yaml)
    channels.mode.update(bad="permanent", buggy="crash", stuck="hang", flaky="retry")
    host.shared_store.writable = False
    await run_for(watch, clock, CONFIRM - 0.5)
    clock.now += 1.0
    look = asyncio.create_task(watch.step())
    # stuck comes first and hangs for 1.1 s: ops must not wait for it.
    await async_wait_until(lambda: channels.to("ops"), timeout=0.8, what="ops while stuck hangs")
    assert not look.done(), "stuck is still in its send"
    await look
    assert channels.to("ops") == ["unreachable"]
    states = {d.target: (d.state, d.error) for n in watch.queue.notices for d in n.deliveries}
    assert states["ops"] == ("delivered", "")
    assert states["bad"] == ("failed", "bad: exit 78"), "permanent: not retried"
    assert states["buggy"][0] == "pending" and "RuntimeError" in states["buggy"][1]
    assert states["stuck"] == ("pending", "no answer within 1.1s"), "cut off, retried later"
    assert states["flaky"] == ("pending", "flaky: HTTP 503")
    channels.mode.update(buggy="ok", stuck="ok", flaky="ok")
    await run_for(watch, clock, 5)
    assert channels.to("buggy") == channels.to("stuck") == channels.to("flaky") == ["unreachable"]
    assert watch.queue.notices == [], "a notice whose deliveries are all done leaves the queue"
    assert channels.closed == 8, "every channel built for a send is closed again"


async def test_fallbacks_after_repeated_failures_and_for_internet_channels_while_the_link_is_down(
    tmp_path: Path,
) -> None:
    yaml = """
agent:
  name: srv-a
  state_dir: {state}
  default_escalation: [{{after: 0s, notify: [mail, push]}}]
channels:
  mail: {{type: log, requires_internet: true, fallback: [sms]}}
  push: {{type: log, fallback: [sms2]}}
  sms: {{type: log}}
  sms2: {{type: log}}
checks:
  - {{name: uplink, type: link, targets: ["tcp://127.0.0.1:9"]}}
"""
    watch, host, clock, channels = make(tmp_path, yaml)
    host.book.configure(host.config.checks)
    host.book.record("uplink", CheckResult(Status.CRITICAL, "no route"))
    channels.mode["push"] = "retry"
    host.shared_store.writable = False
    await run_for(watch, clock, CONFIRM + 0.5)
    assert channels.to("mail") == [], "requires_internet while the uplink is down: skipped"
    assert channels.to("sms") == ["unreachable"], "handed to its fallback at once"
    assert channels.to("sms2") == []
    await run_for(watch, clock, 10)  # push: attempts at +0, +1 s, +3 s
    assert channels.to("sms2") == ["unreachable"], "push's fallback after 3 failed attempts"
    assert channels.to("sms") == ["unreachable"], "each fallback once"


async def test_people_in_the_default_ladder_are_reached_through_their_via(tmp_path: Path) -> None:
    yaml = """
agent:
  name: srv-a
  state_dir: {state}
  default_escalation: [{{after: 0s, notify: ["person:anna"]}}]
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [sms, far]}}
channels:
  sms: {{type: command, argv: [/bin/true, "{{phone}}"]}}
  far: {{type: command, argv: [/bin/true, "{{phone}}"], run_on: ["srv-gw*"]}}
checks: []
"""
    watch, host, clock, channels = make(tmp_path, yaml)
    host.shared_store.writable = False
    await run_for(watch, clock, CONFIRM + 0.5)
    assert [(n, p["recipient"]["phone"]) for n, p in channels.sent] == [("sms", "+46701234567")]


async def test_a_real_webhook_gets_the_notice_and_an_unreadable_queue_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / QUEUE_FILE).write_text("{not json")
    receiver = Receiver()
    await receiver.start()
    try:
        yaml = CONFIG.replace(
            "  ops: {{type: log, default: true}}",
            f'  ops: {{{{type: webhook, url: "{receiver.url}", default: true}}}}',
        )
        watch, host, clock, _ = make(tmp_path, yaml)
        watch.build = build_channel
        await watch.start()
        await watch.stop()
        assert (state / "store-outage.damaged").read_text() == "{not json"
        assert "store outage queue unreadable" in caplog.text
        host.shared_store.writable = False
        await run_for(watch, clock, CONFIRM + 0.5)
        assert [p["store_outage"] for p in receiver.received] == ["unreachable"]
    finally:
        await receiver.stop()


async def test_an_agent_alone_on_sqlite_has_no_outage_watch(tmp_path: Path) -> None:
    config = config_from(CONFIG.format(state=tmp_path / "state"))
    host = FakeHost(config, shared_store=None)  # type: ignore[arg-type]
    watch, _, clock, channels = make(tmp_path, host=host)
    await watch.start()
    assert watch._task is None and watch.collectors() == []
    await run_for(watch, clock, 30)
    assert channels.sent == [] and not (tmp_path / "state" / QUEUE_FILE).exists()


async def test_failed_starts_queue_the_notice_once_and_send_it_when_they_can(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        yaml = CONFIG.replace(
            "  ops: {{type: log, default: true}}",
            f'  ops: {{{{type: webhook, url: "{receiver.url}", default: true}}}}',
        )
        config = config_from(yaml.format(state=tmp_path / "state"))
        (tmp_path / "state").mkdir()
        host = FakeHost(config)
        receiver.status = 503
        await notify_failed_start(host, "cannot reach state store", within=0.3)  # type: ignore[arg-type]
        assert receiver.received == []
        receiver.status = 200
        await notify_failed_start(host, "cannot reach state store", within=5)  # type: ignore[arg-type]
        await notify_failed_start(host, "cannot reach state store", within=0.3)  # type: ignore[arg-type]
        assert [p["store_outage"] for p in receiver.received] == ["unreachable"], (
            "one notice across three failed starts, sent by the first that could"
        )
        assert "cannot reach state store" in receiver.received[0]["text"]
        # The store is back and the agent starts: the outage it remembers ends.
        watch, _, clock, channels = make(tmp_path, host=host)
        await watch.start()
        await watch.stop()
        await run_for(watch, clock, CONFIRM + 1)
        assert channels.to("ops") == ["back"]
    finally:
        await receiver.stop()
