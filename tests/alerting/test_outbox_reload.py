"""A reload (or restart) that removes a channel: its queued notifications go to its
fallbacks that still exist, else they are dropped; none stays pending forever."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.config import Config
from agent.state.sqlite import Store
from alerting.metrics import AlertingCollector
from alerting.outbox import Backoff
from alerting.service import AlertingService
from tests.alerting_fixtures import Receiver, config_from
from tests.helpers import async_wait_until, free_port

# The removed channel never answers; with a long backoff and no early fallback its
# rows stay pending until the reload.
SLOW = Backoff(base=30.0, cap=60.0, fallback_after=100)

CONFIG = """
agent:
  name: rl
  state_dir: {state}
  default_escalation: [{{after: 0s, notify: [{notify}]}}]
channels:
{channels}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}
"""


def config(tmp: Path, notify: str, channels: dict[str, str]) -> Config:
    lines = "\n".join(f"  {name}: {spec}" for name, spec in channels.items())
    return config_from(CONFIG.format(state=tmp / "s", notify=notify, channels=lines))


def metrics(service: AlertingService) -> str:
    registry = CollectorRegistry()
    registry.register(
        AlertingCollector(lambda: service.engine, lambda: service.outbox, lambda: service.peer_up)
    )
    return generate_latest(registry).decode()


async def started(cfg: Config, tmp: Path) -> tuple[AlertingService, Store]:
    store = Store(tmp / "s")
    await store.open()
    service = AlertingService(cfg, store, backoff=SLOW)
    await service.start()
    return service, store


async def test_reload_hands_a_removed_channels_rows_to_its_fallback(tmp_path: Path) -> None:
    lan = Receiver()
    await lan.start()
    dead = f"http://127.0.0.1:{free_port()}/hook"
    v1 = config(
        tmp_path,
        "hook",
        {
            "hook": f'{{type: webhook, url: "{dead}", fallback: [lan]}}',
            "lan": f'{{type: webhook, url: "{lan.url}"}}',
        },
    )
    v2 = config(tmp_path, "lan", {"lan": f'{{type: webhook, url: "{lan.url}"}}'})
    service, store = await started(v1, tmp_path)
    try:
        service.observe("web", "critical", "refused", time.time())
        await service.commit()
        await async_wait_until(lambda: service.outcomes[("hook", "retry")] >= 1, 5, "a failed try")
        assert lan.received == []

        service.reload(v2)
        await async_wait_until(lambda: lan.dedup_keys() == ["rl/-/web/1/0"], 5, "rerouted to lan")
        assert service.outcomes[("hook", "rerouted")] == 1
        deliveries = await service.store.deliveries()
        assert deliveries == [
            ("rl/-/web/1/0", "hook", "skipped"),
            ("rl/-/web/1/0", "lan", "delivered"),
        ]

        # The resolved notice goes to everyone notified: `hook` is gone, its fallback hears it.
        service.observe("web", "ok", "fine", time.time())
        await async_wait_until(
            lambda: "rl/-/web/1/resolved" in lan.dedup_keys(), 6, "resolved notice rerouted"
        )
        assert service.outcomes[("hook", "rerouted")] == 2
        assert service.outbox is not None
        await service.outbox.refresh_pending()
        text = metrics(service)
        # The counter survives the outbox restart of the reload.
        assert 'vaktpost_notifications_total{channel="hook",outcome="retry"}' in text
        assert 'vaktpost_notifications_total{channel="hook",outcome="rerouted"} 2.0' in text
        assert 'vaktpost_outbox_pending{channel="hook"}' not in text
    finally:
        await service.stop()
        await store.close()
        await lan.stop()


async def test_restart_without_the_channel_drops_its_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    v1 = config(tmp_path, "hook", {"hook": f'{{type: webhook, url: "{dead}"}}'})
    v2 = config(tmp_path, "quiet", {"quiet": "{type: log}"})
    service, store = await started(v1, tmp_path)
    try:
        service.observe("web", "critical", "refused", time.time())
        await service.commit()
        await async_wait_until(lambda: service.outcomes[("hook", "retry")] >= 1, 5, "a failed try")
    finally:
        await service.stop()
        await store.close()

    with caplog.at_level(logging.WARNING, logger="vaktpost.outbox"):
        service, store = await started(v2, tmp_path)
        try:
            await async_wait_until(
                lambda: service.outcomes[("hook", "dropped")] == 1, 5, "the orphan dropped"
            )
            rows = await store.call(
                lambda db: db.execute("SELECT state, last_error FROM outbox").fetchall()
            )
            assert rows == [("failed", "channel hook was removed from the config")]
            assert service.outbox is not None
            await service.outbox.refresh_pending()
            assert 'vaktpost_notifications_total{channel="hook",outcome="dropped"} 1.0' in (
                metrics(service)
            )
            assert 'outbox_pending{channel="hook"}' not in metrics(service)
        finally:
            await service.stop()
            await store.close()
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped and dropped[0].levelno == logging.ERROR
    assert getattr(dropped[0], "channel", None) == "hook"
