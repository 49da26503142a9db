"""The monthly report lists the month's channel drills: who acknowledged, after how
long, and the ones that were missed (issue 14: "did the drills reach people")."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from agent.state.sqlite import Store
from alerting.drills import DRILL_STATE_KEY, DrillRun, DrillState, check_name
from tests.helpers import ROOT, vaktpost_cmd

CONFIG = """
agent: {{name: rep, state_dir: {state}, language: en, timezone: Europe/Stockholm}}
channels: {{sms: {{type: log}}}}
drills:
  - {{name: weekly-sms, notify: [sms], cron: "0 10 * * MON", ack_within: 15m}}
"""


def ts(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_the_months_drills_are_in_the_report(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "s"))
    passed = DrillRun("weekly-sms", "12345", ts(2026, 11, 2, 9), ts(2026, 11, 2, 9, 15), ["sms"])
    passed.delivered, passed.acked_by, passed.acked_via = True, "Anna Lind", "sms"
    passed.acked_at = passed.sent_at + 125
    missed = DrillRun("weekly-sms", "23456", ts(2026, 11, 9, 9), ts(2026, 11, 9, 9, 15), ["sms"])
    missed.delivered, missed.missed = True, True
    other_month = DrillRun("weekly-sms", "34567", ts(2026, 12, 7, 9), ts(2026, 12, 7, 9, 15))
    state = DrillState(other_month.sent_at, [passed, missed, other_month], passed.acked_at)
    store = Store(tmp_path / "s")
    store.open_sync()
    store.set_state_sync(check_name("weekly-sms"), DRILL_STATE_KEY, state.to_json())
    store.close_sync()

    def report(fmt: str) -> str:
        done = subprocess.run(
            vaktpost_cmd("report", "-c", str(cfg), "--month", "2026-11", "--format", fmt),
            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    doc = json.loads(report("json"))
    assert [(d["code"], d["result"], d["ack_seconds"]) for d in doc["drills"]] == [
        ("12345", "passed", 125.0),
        ("23456", "missed", None),
    ]
    assert doc["drills"][0]["acked_by"] == "Anna Lind" and doc["drills"][0]["acked_via"] == "sms"
    md = report("md")
    assert (
        "## Channel drills" in md and "| weekly-sms | 2026-11-02T09:00:00Z | sms | passed |" in md
    )
    assert "<h2>Channel drills</h2>" in report("html")
