"""Channel `run_on`: which agents of a fleet deliver a channel, the wait when none of
them is live, the hand-over to fallbacks after it, and an agent alone ignoring it.

The outbox runs on a real SQLite store with real loopback webhook receivers; the
fleet's members are given as the PostgreSQL store reports them (a lapsed row keeps
its lease expiry), on an injected database clock."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import subprocess
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
from alerting.delivery_placement import DeliveryPlacement, hand_over_overdue, undeliverable_metric
from alerting.model import EngineState, Notification, Outcome
from alerting.outbox import Backoff, Outbox
from tests.alerting_fixtures import Receiver, ThreadedReceiver
from tests.helpers import ROOT, VAKTPOST, AgentProcess, async_wait_until, free_port, wait_until

LEASE = 15.0
FAST = Backoff(base=0.05, cap=0.3)


def member(name: str, live: bool, expires_at: float) -> dict[str, Any]:
    return {"name": name, "live": live, "expires_at": expires_at}


def hook(url: str, **kw: Any) -> WebhookConfig:
    return WebhookConfig(type="webhook", url=url, **kw)


def note(i: int, channel: str) -> Notification:
    key = f"a/d/s/1/{i}"
    return Notification(key, channel, 1, "firing", time.time(), {"dedup_key": key, "n": i})


# -- the view: who may deliver, how long a channel with nobody waits ---------------------
def test_a_channel_whose_agents_lapsed_waits_one_lease_from_the_lapse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lan = ChannelConfig(type="webhook", run_on=("srv-gw*",), fallback=("mail",))
    configs = {"lan": lan, "mail": ChannelConfig(type="webhook")}
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    assert not placement.delivers_here(lan)
    assert placement.delivers_here(configs["mail"])

    placement.observe([member("srv-gw1", True, 1010.0)], 1000.0, configs)
    assert not placement.undeliverable("lan") and not placement.overdue("lan")

    with caplog.at_level(logging.WARNING, logger="vaktpost.outbox"):
        # The gateway's lease expired at 1010: the wait runs from then, not from this look.
        placement.observe([member("srv-gw1", False, 1010.0)], 1020.0, configs)
        placement.observe([member("srv-gw1", False, 1010.0)], 1024.9, configs)
        assert placement.undeliverable("lan")
        assert not placement.overdue("lan"), "within one lease of the lapse"
        placement.observe([member("srv-gw1", False, 1010.0)], 1025.0, configs)
        assert placement.overdue("lan")
    said = [r for r in caplog.records if "no live agent may deliver" in r.getMessage()]
    assert len(said) == 1, "one log line per outage, not one per look"
    assert placement.reason("lan", lan) == "no live agent may deliver lan: srv-gw1 down"
    assert not placement.undeliverable("mail"), "this agent itself may deliver mail"

    placement.observe([member("srv-gw1", True, 1060.0)], 1050.0, configs)
    assert not placement.undeliverable("lan") and not placement.overdue("lan")


def test_an_agent_that_left_cleanly_is_waited_for_from_when_it_was_missed() -> None:
    # A clean stop deletes the member row: no expiry to count from.
    lan = ChannelConfig(type="webhook", run_on=("srv-gw",), fallback=("mail",))
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    placement.observe([], 2000.0, {"lan": lan})
    assert placement.undeliverable("lan") and not placement.overdue("lan")
    placement.observe([], 2014.0, {"lan": lan})
    assert not placement.overdue("lan")
    placement.observe([], 2015.0, {"lan": lan})
    assert placement.overdue("lan")
    assert placement.reason("lan", lan) == (
        "no live agent may deliver lan: every agent matching srv-gw down"
    )


def test_a_restarted_agent_counts_as_live_despite_its_old_lapsed_row() -> None:
    lan = ChannelConfig(type="webhook", run_on=("srv-gw",))
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    rows = [member("srv-gw", False, 900.0), member("srv-gw", True, 1010.0)]
    placement.observe(rows, 1000.0, {"lan": lan})
    assert not placement.undeliverable("lan")


# -- the outbox: lanes only where allowed, the hand-over after the wait -------------------
async def make(
    tmp: Path, configs: dict[str, ChannelConfig], placement: DeliveryPlacement | None
) -> tuple[IncidentStore, Outbox, Store]:
    store = Store(tmp)
    await store.open()
    istore = IncidentStore(store)
    channels: dict[str, Channel] = {n: build_channel(n, c) for n, c in configs.items()}
    outbox = Outbox(istore, channels, configs, lambda: False, FAST, placement=placement)
    return istore, outbox, store


async def close(outbox: Outbox, store: Store, *receivers: Receiver) -> None:
    await outbox.stop()
    for channel in outbox.channels.values():
        await channel.close()
    for receiver in receivers:
        await receiver.stop()
    await store.close()


async def test_a_pinned_channel_is_not_delivered_here_then_goes_to_its_fallback(
    tmp_path: Path,
) -> None:
    lan_rx, mail_rx = Receiver(), Receiver()
    await lan_rx.start()
    await mail_rx.start()
    configs: dict[str, ChannelConfig] = {
        "lan": hook(lan_rx.url, run_on=("srv-gw",), fallback=("mail",)),
        "mail": hook(mail_rx.url),
    }
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    istore, outbox, store = await make(tmp_path, configs, placement)
    notes = [note(0, "mail"), note(1, "lan"), note(2, "lan")]
    await istore.persist(Outcome(notifications=notes), EngineState())
    outbox.start()
    try:
        await async_wait_until(lambda: len(mail_rx.received) == 1, 5, "mail delivered here")
        assert set(outbox._tasks) == {"mail"}, "no lane (and no claim) for srv-gw's channel"
        placement.observe([member("srv-gw", True, 1010.0)], 1000.0, configs)
        assert await hand_over_overdue(placement, outbox) == 0, "its agent is live: not ours"
        placement.observe([member("srv-gw", False, 1010.0)], 1020.0, configs)
        assert await hand_over_overdue(placement, outbox) == 0, "waits a lease after the lapse"
        assert {(k, c, s) for k, c, s in await istore.deliveries() if c == "lan"} == {
            ("a/d/s/1/1", "lan", "pending"),
            ("a/d/s/1/2", "lan", "pending"),
        }
        placement.observe([member("srv-gw", False, 1010.0)], 1025.0, configs)
        assert await hand_over_overdue(placement, outbox) == 2
        await async_wait_until(lambda: len(mail_rx.received) == 3, 5, "handed to mail")
        assert [r["dedup_key"] for r in mail_rx.received[1:]] == ["a/d/s/1/1", "a/d/s/1/2"]
        assert lan_rx.received == []
        assert outbox.outcomes[("lan", "skipped")] == 2
        with contextlib.closing(sqlite3.connect(store.path)) as db:
            rows = db.execute("SELECT state, last_error FROM outbox WHERE channel='lan'").fetchall()
        assert set(rows) == {("skipped", "no live agent may deliver lan: srv-gw down")}
    finally:
        await close(outbox, store, lan_rx, mail_rx)


async def test_without_a_fallback_the_rows_wait_and_the_metric_says_so(tmp_path: Path) -> None:
    modem_rx = Receiver()
    await modem_rx.start()
    configs: dict[str, ChannelConfig] = {"modem": hook(modem_rx.url, run_on=("srv-gw",))}
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    istore, outbox, store = await make(tmp_path, configs, placement)
    await istore.persist(Outcome(notifications=[note(0, "modem")]), EngineState())
    outbox.start()
    try:
        placement.observe([member("srv-gw", False, 10.0)], 10_000.0, configs)
        assert placement.overdue("modem")
        assert await hand_over_overdue(placement, outbox) == 0
        assert await istore.deliveries() == [("a/d/s/1/0", "modem", "pending")]
        sample = undeliverable_metric(placement, outbox.configs).samples[0]
        assert (sample.labels, sample.value) == ({"channel": "modem"}, 1.0)
        placement.observe([member("srv-gw", True, 10_020.0)], 10_010.0, configs)
        sample = undeliverable_metric(placement, outbox.configs).samples[0]
        assert sample.value == 0.0
    finally:
        await close(outbox, store, modem_rx)


async def test_the_agent_allowed_by_run_on_delivers_its_channel(tmp_path: Path) -> None:
    lan_rx = Receiver()
    await lan_rx.start()
    configs: dict[str, ChannelConfig] = {"lan": hook(lan_rx.url, run_on=("srv-gw",))}
    istore, outbox, store = await make(tmp_path, configs, DeliveryPlacement("srv-gw", lambda: 3))
    await istore.persist(Outcome(notifications=[note(0, "lan")]), EngineState())
    outbox.start()
    try:
        await async_wait_until(lambda: len(lan_rx.received) == 1, 5, "delivered by srv-gw")
    finally:
        await close(outbox, store, lan_rx)


# -- config, and an agent alone -----------------------------------------------------------
def test_an_empty_run_on_glob_is_one_line_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'channels:\n  lan: {type: webhook, url: "http://127.0.0.1:9/x", run_on: ["srv-gw", ""]}\n'
    )
    proc = subprocess.run(
        [*VAKTPOST, "validate", "-c", str(cfg)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"{cfg}:2: channels.lan.run_on[1]: an empty glob matches no agent:"
        " leave run_on out to allow any agent"
    )


ALONE = """
agent:
  name: srv-a
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  lan: {{type: webhook, url: "{hook}", run_on: [srv-gw]}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: [lan]}}
"""


def test_alone_run_on_is_ignored_and_the_agent_delivers_every_channel(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "alone.yaml"
    with ThreadedReceiver() as receiver:
        cfg.write_text(
            ALONE.format(port=port, state=tmp_path / "state", hook=receiver.url, closed=free_port())
        )
        with AgentProcess(cfg, port=port) as agent:
            agent.wait_ready()
            wait_until(lambda: receiver.dedup_keys(), timeout=20, what="step 0 delivered")
            metrics = agent.get("/metrics")[1].decode()
        assert receiver.dedup_keys() == ["srv-a/dept/app/1/0"]
    assert 'vaktpost_channel_undeliverable{channel="lan"} 0.0' in metrics


def test_a_reload_that_moves_the_channel_starts_its_wait_afresh() -> None:
    old = ChannelConfig(type="webhook", run_on=("srv-gw",), fallback=("mail",))
    new = ChannelConfig(type="webhook", run_on=("srv-gw2",), fallback=("mail",))
    placement = DeliveryPlacement("srv-a", lambda: LEASE)
    placement.observe([member("srv-gw", False, 10.0)], 1000.0, {"lan": old})
    assert placement.overdue("lan")
    # srv-gw2 was never seen: the wait for it starts at this look, not at srv-gw's lapse.
    placement.observe([member("srv-gw", False, 10.0)], 1001.0, {"lan": new})
    assert placement.undeliverable("lan") and not placement.overdue("lan")
    assert placement.reason("lan", new) == (
        "no live agent may deliver lan: every agent matching srv-gw2 down"
    )
