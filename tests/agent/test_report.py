"""The monthly report against numbers this test computes itself: a month with two
incidents (one overlapping a maintenance window), the windows, and a backup that
was late for a day (DESIGN.md, History: the monthly report)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.state.sqlite import Store
from tests.helpers import ROOT, vaktpost_cmd

TZ = ZoneInfo("Europe/Stockholm")
CONFIG = """
agent:
  name: report-test
  state_dir: {state}
  timezone: Europe/Stockholm
channels:
  oncall: {{type: log, default: true}}
checks:
  - {{name: case-app, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: case-backup, type: backup_files, path: /nonexistent/*.dump}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - id: case
        checks: [case-app]
        rto: 4h
        mtpd: 1d
        backups: [{{check: case-backup, rpo: 1d}}]
    escalation: [{{after: 0s, notify: [oncall]}}]
  - id: school
    systems: [{{id: web, checks: [case-app]}}]
maintenance:
  - {{match: {{system: case}}, cron: "0 2 * * 0", duration: 2h, comment: patching}}
"""


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).timestamp()


def seed(state: Path) -> None:
    store = Store(state)
    store.open_sync()

    def write(db: Any) -> None:
        rows = [
            # 3.5 h on a Tuesday, acked after 20 minutes
            (1, local(3, 10), local(3, 13, 30), {"root": "", "caused_by": None}),
            # 6 h across Sunday's 02-04 window: 4 h count, but the RTO (4 h) was breached
            (2, local(15, 1), local(15, 7), {"root": "uplink", "caused_by": None}),
            # October's incident: not in November's report
            (3, local(20, 1, month=10), local(20, 2, month=10), {}),
        ]
        for iid, start, end, extra in rows:
            data = {"id": iid, "department": "social", "system": "case", **extra}
            db.execute(
                "INSERT INTO incidents(id, department, system, status, started_at, resolved_at,"
                " data) VALUES (?, 'social', 'case', 'resolved', ?, ?, ?)",
                (iid, start, end, json.dumps(data)),
            )
        db.execute(
            "INSERT INTO incident_events(incident_id, at, kind, step, channels, message)"
            " VALUES (1, ?, 'acknowledged', 0, '[]', 'anna: on it')",
            (local(3, 10, 20),),
        )
        for at, status in (
            (local(30, 12, month=10), "ok"),
            (local(10, 0), "critical"),  # late for a day
            (local(11, 0), "ok"),
        ):
            db.execute(
                "INSERT INTO check_history(check_name, at, status, message)"
                " VALUES ('case-backup', ?, ?, '')",
                (at, status),
            )

    store.call_sync(write)
    store.close_sync()


def run(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vaktpost_cmd("report", "-c", str(cfg), *args),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    seed(tmp_path / "s")
    path = tmp_path / "cfg.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s"))
    return path


def test_the_numbers_add_up_to_the_second(cfg: Path) -> None:
    out = run(cfg, "--month", "2026-11", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    month = local(1, 0, month=12) - local(1, 0)
    assert month == 30 * 86400  # no DST change in November
    maintenance = 5 * 2 * 3600  # Sundays 1, 8, 15, 22, 29
    down = 3.5 * 3600 + (6 - 2) * 3600
    social = doc["departments"][0]
    case = social["systems"][0]
    assert doc["month"] == "2026-11" and doc["period"]["seconds"] == month
    assert case["downtime_seconds"] == down
    assert case["maintenance_seconds"] == maintenance
    assert case["availability"] == round(1 - down / (month - maintenance), 6)
    assert case["incidents"] == 2
    first, second = social["incidents"]
    assert first["id"] == 1 and first["duration_seconds"] == 3.5 * 3600
    assert first["time_to_first_ack_seconds"] == 20 * 60
    assert not first["rto_breached"]
    assert second["rto_breached"] and not second["mtpd_breached"]
    assert second["root_cause"] == "uplink" and second["time_to_first_ack_seconds"] is None
    assert second["started_at"] == "2026-11-15T00:00:00Z"
    backup = case["backups"][0]
    assert backup["ready_seconds"] == month - 86400
    assert backup["ready_share"] == round((month - 86400) / month, 6)
    # a system with no incidents and no window: fully available
    web = doc["departments"][1]["systems"][0]
    assert web["availability"] == 1.0 and web["downtime_seconds"] == 0


def test_department_filter_and_printable_formats(cfg: Path) -> None:
    doc = json.loads(
        run(cfg, "--month", "2026-11", "--department", "school", "--format", "json").stdout
    )
    assert [d["id"] for d in doc["departments"]] == ["school"]
    page = run(cfg, "--month", "2026-11", "--format", "html").stdout
    assert "size:A4" in page and "break-before:page" in page
    assert page.count('<section class="department">') == 2 and "Socialtjänsten" in page
    md = run(cfg, "--month", "2026-11", "--format", "md").stdout
    assert "| #2 | case | 2026-11-15T00:00:00Z | 6h |" in md


def test_bad_month_and_department_are_one_line_errors(cfg: Path) -> None:
    out = run(cfg, "--month", "2026-13")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "YYYY-MM" in out.stderr
    out = run(cfg, "--month", "2026-11", "--department", "nope")
    assert out.returncode == 2 and "unknown department" in out.stderr
