"""Channel drills on an injected clock: the cron fires a marked message with its own
code, an ack in time passes it, a miss is a warning incident, both are recorded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.configload import ConfigError
from agent.drills_component import STATE_KEY, DrillsComponent
from agent.state.sqlite import Store
from alerting.drills import check_name
from alerting.service import AlertingService
from tests.alerting_fixtures import config_from
from tests.helpers import async_wait_until

TZ = ZoneInfo("Europe/Stockholm")
# Wednesday 2026-03-04 09:59 local: a minute before the weekly drill.
T0 = datetime(2026, 3, 4, 9, 59, tzinfo=TZ).timestamp()

CONFIG = """
agent: {{name: drills, state_dir: {state}, language: {lang}, timezone: Europe/Stockholm}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [sms]}}
rotations:
  tib: {{members: [anna]}}
channels:
  sms: {{type: log, requires_internet: false}}
  ops: {{type: log, default: true}}
drills:
  - {{name: weekly-sms, notify: ["rotation:tib"], cron: "0 10 * * WED", ack_within: 15m,
      message: Svara med koden}}
"""


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def drills_on(tmp_path: Path, clock: Clock, lang: str = "sv") -> Any:
    config = config_from(CONFIG.format(state=tmp_path / "state", lang=lang))
    store = Store(tmp_path / "state")
    await store.open()
    service = AlertingService(config, store, clock=clock)
    await service.start()
    component = DrillsComponent(SimpleNamespace(config=config), service, clock)
    return store, service, component


async def close(store: Store, service: AlertingService) -> None:
    await service.stop()
    await store.close()


async def test_a_drill_acknowledged_in_time_passes(tmp_path: Path) -> None:
    clock = Clock(T0)
    store, service, drills = await drills_on(tmp_path, clock)
    try:
        await drills.tick()  # first sight: counts from now, sends nothing
        assert drills.states["weekly-sms"].runs == []
        clock.now = T0 + 61  # 10:00:01
        await drills.tick()
        run = drills.states["weekly-sms"].current
        assert run is not None and len(run.code) == 5  # incident codes have four digits
        assert run.targets == ["sms#anna"]

        async def delivered() -> list[tuple[str, str, str]]:
            return [r for r in await service.store.deliveries() if r[2] == "delivered"]

        rows = await async_wait_until(delivered, 10, "the drill message delivered")
        assert rows[0][1] == "sms" and "/drill/" in rows[0][0]
        sent = run.dedup_keys[0]
        assert sent == rows[0][0]

        # A stranger's reply with the right code, then a wrong code: nothing.
        assert await drills.acknowledge_code(f"K {run.code}", "+46700000099") is None
        wrong = await drills.acknowledge_code("K 12345", "+46701234567")
        assert wrong is not None and not wrong.acknowledged
        clock.now = T0 + 61 + 125
        reply = await drills.acknowledge_code(f"K {run.code} här", "070-123 45 67")
        assert reply is not None and reply.acknowledged
        assert "Anna Lind" in reply.message

        kept = await store.get_state(check_name("weekly-sms"), STATE_KEY)
        result = kept["runs"][-1]
        assert result["acked_by"] == "Anna Lind" and result["acked_via"] == "sms"
        assert result["acked_at"] - result["sent_at"] == pytest.approx(125)
        assert result["delivered"] is True and result["missed"] is False
        assert kept["last_success"] == pytest.approx(T0 + 186)

        # Past the deadline nothing happens to a passed run: no incident.
        clock.now = T0 + 61 + 20 * 60
        await drills.tick()
        assert service.engine is not None
        assert not service.engine.state.incidents
        families = drills.collectors()[0].collect()
        metrics = {f.name: [(s.labels, s.value) for s in f.samples] for f in families}
        assert metrics["vaktpost_drill_ack_seconds"] == [({"drill": "weekly-sms"}, 125.0)]
        assert metrics["vaktpost_drill_last_success_timestamp_seconds"][0][1] == T0 + 186
        month = await drills.results(T0 - 86400, T0 + 86400)
        assert [(r["result"], r["ack_seconds"]) for r in month] == [("passed", 125.0)]
    finally:
        await close(store, service)


async def test_a_missed_drill_is_a_warning_incident_until_the_next_passes(tmp_path: Path) -> None:
    clock = Clock(T0)
    store, service, drills = await drills_on(tmp_path, clock, lang="en")
    try:
        await drills.tick()
        clock.now = T0 + 61
        await drills.tick()
        run = drills.states["weekly-sms"].current
        assert run is not None
        clock.now = T0 + 61 + 14 * 60
        await drills.tick()
        assert service.engine is not None and not service.engine.state.incidents
        clock.now = T0 + 61 + 15 * 60  # ack_within is over
        await drills.tick()
        await service.commit()
        incidents = list(service.engine.state.incidents.values())
        assert [i.system for i in incidents] == ["drill-weekly-sms"]
        track = service.engine.state.checks["drill-weekly-sms"]
        assert track.status == "warning"
        assert "drill weekly-sms not acknowledged within 15m" in track.message
        assert "rotation:tib via channel sms to anna (+46701234567)" in track.message
        # The code of a missed run acknowledges nothing.
        late = await drills.acknowledge_code(run.code, "+46701234567")
        assert late is not None and not late.acknowledged
        kept = await store.get_state(check_name("weekly-sms"), STATE_KEY)
        assert kept["runs"][-1]["missed"] is True and kept["last_success"] is None
        # The warning incident went to the default ladder (ops), not the broken path only.
        notes = await service.store.deliveries()
        assert any(c == "ops" and "/drill-weekly-sms/" in k for k, c, _ in notes)

        # A week later the next drill is acknowledged: the incident resolves.
        clock.now = T0 + 7 * 86400 + 61
        await drills.tick()
        again = drills.states["weekly-sms"].current
        assert again is not None and again is not run
        reply = await drills.acknowledge_code(f"K{again.code}", "+46701234567")
        assert reply is not None and reply.acknowledged
        await service.commit()
        assert not service.engine.state.incidents
        month = await drills.results(T0, T0 + 8 * 86400)
        assert [r["result"] for r in month] == ["missed", "passed"]
    finally:
        await close(store, service)


async def test_drill_text_is_marked_and_a_restart_keeps_the_schedule(tmp_path: Path) -> None:
    clock = Clock(T0)
    store, service, drills = await drills_on(tmp_path, clock)
    try:
        await drills.tick()
        clock.now = T0 + 61
        await drills.tick()
        run = drills.states["weekly-sms"].current
        assert run is not None
        rows = await store.call(lambda db: db.execute("SELECT payload FROM outbox").fetchall())
        text = rows[0][0]
        assert "ÖVNING: weekly-sms" in text and f"Svara K {run.code}" in text
        assert "Svara med koden" in text
    finally:
        await close(store, service)
    # Another agent process on the same store: the run is still open, nothing re-sent.
    store, service, drills = await drills_on(tmp_path, clock)
    try:
        clock.now = T0 + 120
        await drills.tick()
        assert len(drills.states["weekly-sms"].runs) == 1
        assert drills.states["weekly-sms"].current is not None
    finally:
        await close(store, service)


def test_validate_rejects_unknown_drill_targets_and_duplicate_names(tmp_path: Path) -> None:
    bad = CONFIG.format(state=tmp_path, lang="en").replace("rotation:tib", "rotation:tibb")
    with pytest.raises(ConfigError) as info:
        config_from(bad)
    assert "unknown rotation 'tibb' (did you mean 'tib'?)" in str(info.value)
    twice = CONFIG.format(state=tmp_path, lang="en") + (
        '  - {name: weekly-sms, notify: [ops], cron: "0 * * * *"}\n'
    )
    with pytest.raises(ConfigError) as info:
        config_from(twice)
    assert "two drills are named 'weekly-sms'" in str(info.value)
    cron = CONFIG.format(state=tmp_path, lang="en").replace("0 10 * * WED", "0 25 * * *")
    with pytest.raises(ConfigError) as info:
        config_from(cron)
    assert "invalid cron" in str(info.value)
