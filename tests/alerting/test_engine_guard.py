"""The guarded engine boundary (issue 9, seen 1; issue 8, "nothing may stop the engine").

An engine call that raises used to leave half-done state (steps counted as taken,
their notifications lost) and killed the tick loop: no later step of any incident
fired until restart. Now a call commits its whole outcome or none of it, per
incident in tick, and the loops survive and count what failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import alerting.engine as engine_module
from agent.state.sqlite import Store
from alerting.engine import IncidentEngine
from alerting.payload import build_payload
from alerting.service import AlertingService
from tests.alerting_fixtures import Timeline, config_from
from tests.helpers import async_wait_until

T0 = 1_767_261_600.0

CONFIG = """
agent: {{name: a, language: en, group_wait: 0s, state_dir: {state}}}
channels: {{oncall: {{type: log, default: true}}, duty: {{type: log}}}}
checks:
  - {{name: good, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}
  - {{name: bad, type: tcp, host: 127.0.0.1, port: 1, failures_before_alert: 1}}
departments:
  - id: d
    systems:
      - {{id: good, checks: [good]}}
      - {{id: bad, checks: [bad]}}
    escalation:
      - {{after: 0m, notify: [oncall]}}
      - {{after: 10m, notify: [duty]}}
"""


def broken_for(system: str, real: Any) -> Any:
    def build(plan: Any, unit: Any, incident: Any, *args: Any, **kw: Any) -> Any:
        if incident.system == system:
            raise OSError(24, "Too many open files")
        return real(plan, unit, incident, *args, **kw)

    return build


def test_a_failing_incident_is_rolled_back_and_the_others_escalate_on_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tl = Timeline(IncidentEngine(config_from(CONFIG.format(state="/tmp/x"))), T0)
    tl.result("good", "critical")
    tl.result("bad", "critical")
    bad = tl.engine.open_incident(("d", "bad"))
    assert bad is not None and bad.steps_taken == [0]
    real = build_payload
    monkeypatch.setattr(engine_module, "build_payload", broken_for("bad", real))
    tl.advance_to(10 * 60)
    out = tl.engine.tick(tl.now)
    assert [(at, ch, key) for at, ch, key in tl.sent() if ch == "duty"] == [(600.0, "duty", "1")]
    assert tl.engine.open_incident(("d", "bad")) is bad, "still open, same object"
    assert bad.steps_taken == [0], "the step that could not be sent is not counted as taken"
    assert out.errors and "incident 2 (d/bad)" in out.errors[0]
    monkeypatch.setattr(engine_module, "build_payload", real)
    tl.advance_to(10 * 60 + 1)
    duty = [(n.incident_id, n.dedup_key) for n in tl.notifications if n.channel == "duty"]
    assert duty[-1] == (bad.id, f"a/d/bad/{bad.id}/1")
    assert bad.steps_taken == [0, 1], "delivered late, never lost"


def test_observe_that_raises_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = IncidentEngine(config_from(CONFIG.format(state="/tmp/x")))
    monkeypatch.setattr(engine_module, "build_payload", broken_for("bad", build_payload))
    out = engine.observe("bad", "critical", "down", T0)
    assert out.errors and not out.notifications
    assert engine.state.incidents == {}
    assert engine.state.next_incident_id == 1
    assert engine.state.checks["bad"].failures == 0, "the result is not half counted"


async def test_the_tick_loop_survives_and_counts_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_from(CONFIG.format(state=tmp_path))
    store = Store(tmp_path)
    await store.open()
    service = AlertingService(config, store)
    ticks = {"n": 0}
    real_tick = IncidentEngine.tick

    def flaky_tick(self: IncidentEngine, now: float) -> Any:
        ticks["n"] += 1
        if ticks["n"] <= 2:
            raise RuntimeError("boom")
        return real_tick(self, now)

    monkeypatch.setattr(IncidentEngine, "tick", flaky_tick)
    await service.start()
    try:
        await async_wait_until(lambda: ticks["n"] >= 5, 20, "the tick loop to go on after raising")
        assert service.engine_errors >= 2
    finally:
        await service.stop()
        await store.close()
