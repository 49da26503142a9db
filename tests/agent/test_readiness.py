"""Readiness: every reason in plain words, the CLI in three formats, the daemon API, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.cli import main
from agent.config import Config
from agent.configload import load_config_text
from agent.readiness import report
from agent.readiness_component import ReadinessComponent
from agent.results import ResultBook
from agent.runtime import start_offset
from agent.state.sqlite import Store
from checks.base import CheckResult, Status
from tests.helpers import AgentProcess, free_port, wait_until

NOW = 1_800_000_000.0
H, D = 3600.0, 86400.0

CONFIG = """
agent: {{name: t, state_dir: {state}, listen: "127.0.0.1:{port}", language: en}}
channels: {{log: {{type: log, default: true}}}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1}}
  - {{name: treserva-restic, type: restic, repository: /r/treserva}}
  - {{name: archive-restic, type: restic, repository: /r/archive}}
  - {{name: payroll-borg, type: borg, repository: /r/payroll}}
  - {{name: dumps, type: backup_files, path: /b/*.dump, min_size: 1MiB, checksum_file: /b/SUMS}}
  - {{name: exports, type: backup_files, path: /b/*.csv, checksum_file: /b/CSV.SUMS}}
  - {{name: locked-out, type: restic, repository: /r/x}}
  - {{name: never-ran, type: borg, repository: /r/y}}
departments:
  - id: social-services
    name: Socialtjänsten
    systems:
      - id: case-management
        name: Treserva
        checks: [web]
        rto: 2h
        backups: [{{check: treserva-restic, rpo: 24h}}]
      - id: archive
        backups: [{{check: archive-restic, rpo: 24h}}]
      - id: payroll
        backups: [{{check: payroll-borg, rpo: 48h}}]
      - id: files
        backups: [{{check: dumps, rpo: 24h}}, {{check: exports, rpo: 24h}}]
      - id: troubled
        backups: [{{check: locked-out, rpo: 1d}}, {{check: never-ran, rpo: 1d}}]
      - id: kiosk
        checks: [web]
      - id: stateless
  - id: schools
    name: Skolor
    systems:
      - id: learning
        backups: [{{check: treserva-restic, rpo: 12h}}]
"""


def make_config(state: Path = Path("/nonexistent"), port: int = 9) -> Config:
    return load_config_text(CONFIG.format(state=state, port=port), "readiness.yaml")


def res(status: Status, message: str = "", **facts: float) -> CheckResult:
    return CheckResult(status, message, facts, 0.1, NOW - 60)


RESULTS = {
    "web": res(Status.OK, "connected"),
    "treserva-restic": res(
        Status.OK,
        last_success_timestamp=NOW - 3 * H,
        verify_at=NOW - H,
        verify_ok=1,
        verified_at=NOW - H,
        restore_test_at=NOW - 2 * D,
        restore_ok=1,
        restore_tested_at=NOW - 2 * D,
    ),
    "archive-restic": res(
        Status.CRITICAL,
        last_success_timestamp=NOW - 31 * H,
        verify_at=NOW - 2 * H,
        verify_ok=0,
        verified_at=NOW - 3 * D,
    ),
    "payroll-borg": res(
        Status.OK,
        last_success_timestamp=NOW - 30 * H,
        verify_at=NOW - 5 * D,
        verify_ok=1,
        verified_at=NOW - 5 * D,
        restore_test_at=NOW - 40 * D,
        restore_ok=1,
        restore_tested_at=NOW - 40 * D,
    ),
    "dumps": res(
        Status.CRITICAL,
        last_success_timestamp=NOW - H,
        size_bytes=1000,
        shrink_percent=90,
        previous_size_bytes=10000,
    ),
    "exports": res(
        Status.CRITICAL,
        last_success_timestamp=NOW - H,
        size_bytes=5000,
        verify_at=NOW - 2 * H,
        verify_ok=0,
    ),
    "locked-out": res(Status.UNKNOWN, "cannot open repository: wrong password or no key found"),
}


def systems_of(doc: dict[str, Any], dept: str) -> dict[str, dict[str, Any]]:
    (department,) = [d for d in doc["departments"] if d["id"] == dept]
    return {s["id"]: s for s in department["systems"]}


def test_every_reason_in_plain_words() -> None:
    doc = report(make_config(), RESULTS, NOW)
    assert doc["generated_at"] == "2027-01-15T08:00:00Z"
    s = systems_of(doc, "social-services")
    assert s["case-management"]["ready"] is True and s["case-management"]["reasons"] == []
    assert s["case-management"]["up"] is True
    assert s["case-management"]["backups"] == [
        {
            "check": "treserva-restic",
            "type": "restic",
            "status": "ok",
            "rpo_seconds": 86400.0,
            "age_seconds": 10800.0,
            "newest_at": "2027-01-15T05:00:00Z",
            "verified_at": "2027-01-15T07:00:00Z",
            "restore_tested_at": "2027-01-13T08:00:00Z",
            "restore_test_max_age_seconds": 30 * D,
            "ready": True,
            "reasons": [],
        }
    ]
    assert s["archive"]["ready"] is False
    assert s["archive"]["reasons"] == [
        "archive-restic: newest snapshot 31 h old, RPO 24 h",
        "archive-restic: last repository check failed (2 h ago)",
        "archive-restic: restore never tested",
    ]
    assert s["payroll"]["backups"][0]["reasons"] == [
        "last passed repository check 5 d ago, must be within 48 h (2 x check_every)",
        "last successful restore test 40 d ago, limit 30 d",
    ]  # 30 h old against an RPO of 48 h is fine
    assert s["files"]["reasons"] == [
        "dumps: newest file 1000 B, below min_size 1 MiB",
        "dumps: newest file shrank 90% against the previous one, limit 50%",
        "dumps: checksum never verified",
        "exports: last checksum verification failed (2 h ago)",
    ]
    assert s["troubled"]["reasons"] == [
        "locked-out: could not be checked: cannot open repository: wrong password or no key found",
        "never-ran: no result recorded yet: the check has not run",
    ]
    # A backups entry naming a tcp check no longer loads (test_config: backup_not_a_backup).
    assert s["kiosk"]["reasons"] == [] and s["kiosk"]["backups"] == []
    assert s["stateless"] == {
        "id": "stateless",
        "name": "stateless",
        "up": None,
        "ready": True,
        "reasons": [],
        "rto_seconds": None,
        "mtpd_seconds": None,
        "backups": [],
    }
    (social, schools) = doc["departments"]
    assert social["ready"] is False and social["state"] == "normal"
    assert social["name"] == "Socialtjänsten"
    # The same backup is fresh enough for one RPO and too old for a stricter one.
    assert schools["ready"] is True
    strict = {**RESULTS, "treserva-restic": res(Status.OK, last_success_timestamp=NOW - 13 * H)}
    learning = systems_of(report(make_config(), strict, NOW), "schools")["learning"]
    assert learning["reasons"][0] == "treserva-restic: newest snapshot 13 h old, RPO 12 h"


def test_down_system_makes_department_degraded() -> None:
    results = {**RESULTS, "web": res(Status.CRITICAL, "connection refused")}
    doc = report(make_config(), results, NOW, department="social-services")
    assert [d["id"] for d in doc["departments"]] == ["social-services"]
    assert systems_of(doc, "social-services")["case-management"]["up"] is False
    assert doc["departments"][0]["state"] == "degraded"
    with pytest.raises(KeyError):
        report(make_config(), results, NOW, department="nope")


def test_department_extras_are_merged() -> None:
    host = SimpleNamespace(config=make_config(), book=ResultBook())
    extras = [
        lambda: {"social-services": {"state": "rto_breached", "incidents": [{"id": 7}]}},
        lambda: 1 / 0,  # a broken provider must not take the endpoint down
    ]
    doc = ReadinessComponent(host, extras).departments_json()  # type: ignore[arg-type]
    social = doc["departments"][0]
    assert social["state"] == "rto_breached" and social["incidents"] == [{"id": 7}]
    assert doc["departments"][1]["state"] == "normal"


def record(state_dir: Path, results: dict[str, CheckResult], types: dict[str, str]) -> None:
    async def save() -> None:
        store = Store(state_dir)
        await store.open()
        rows = [
            (n, types[n], {**r.to_json(n, types[n]), "finished_at": r.finished_at})
            for n, r in results.items()
        ]
        await store.save_results(rows)
        await store.close()

    asyncio.run(save())


def recorded_now(now: float) -> dict[str, CheckResult]:
    """RESULTS shifted to `now` (the CLI uses the real clock)."""
    shift = now - NOW
    out = {}
    for name, r in RESULTS.items():
        facts = {
            k: (v + shift if k.endswith("_at") or k.endswith("timestamp") else v)
            for k, v in r.facts.items()
        }
        out[name] = CheckResult(r.status, r.message, facts, 0.1, now - 60)
    return out


def test_cli_reads_recorded_results_in_three_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path / "state")
    path = tmp_path / "vaktpost.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state", port=9))
    types = {c.name: c.type for c in config.checks}
    recorded = recorded_now(time.time())
    recorded["never-ran"] = res(Status.UNKNOWN, "cannot open repository")  # nothing runs
    record(tmp_path / "state", recorded, types)

    assert main(["readiness", "-c", str(path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    s = systems_of(doc, "social-services")
    assert s["archive"]["reasons"][0] == "archive-restic: newest snapshot 31 h old, RPO 24 h"
    assert s["case-management"]["ready"] is True

    assert main(["readiness", "-c", str(path), "--department", "schools"]) == 0
    table = capsys.readouterr().out
    assert "Skolor (schools): READY" in table and "Socialtjänsten" not in table
    assert main(["readiness", "-c", str(path)]) == 1
    table = capsys.readouterr().out
    assert "Socialtjänsten (social-services): NOT READY" in table
    assert "    ! archive: archive-restic: restore never tested" in table

    assert main(["readiness", "-c", str(path), "--format", "html"]) == 1
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert page.count('<section class="dept">') == 2
    assert "<li>newest snapshot 31 h old, RPO 24 h</li>" in page
    assert "page-break-after:always" in page

    assert main(["readiness", "-c", str(path), "--department", "nope"]) == 2
    assert "unknown department: nope" in capsys.readouterr().err


BACKUP_ONLY = """
agent: {{name: t, state_dir: {state}, listen: "127.0.0.1:{port}", language: en}}
channels: {{log: {{type: log, default: true}}}}
checks:
  - {{name: nightly, type: backup_files, path: "{backups}/*.tar", interval: {interval}}}
  - {{name: stale, type: backup_files, path: "{backups}/old/*.tar", interval: 1h}}
departments:
  - id: water
    name: VA
    systems:
      - {{id: scada, backups: [{{check: nightly, rpo: 24h}}]}}
      - {{id: billing, backups: [{{check: stale, rpo: 24h}}]}}
"""


def backup_setup(tmp_path: Path, port: int = 9, interval: str = "1h") -> Path:
    backups = tmp_path / "backups"
    (backups / "old").mkdir(parents=True)
    (backups / "today.tar").write_bytes(b"x" * 1000)
    old = backups / "old" / "last-year.tar"
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 400 * D, time.time() - 400 * D))
    path = tmp_path / "vaktpost.yaml"
    text = BACKUP_ONLY.format(
        state=tmp_path / "state", port=port, backups=backups, interval=interval
    )
    path.write_text(text)
    return path


def test_cli_runs_backup_checks_when_nothing_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = backup_setup(tmp_path)
    assert main(["readiness", "-c", str(path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    s = systems_of(doc, "water")
    assert s["scada"]["ready"] is True
    assert s["billing"]["reasons"] == ["stale: newest file 400 d old, RPO 24 h"]
    # The fresh results were recorded: the next run reads them without probing.
    stored = Store(tmp_path / "state")
    stored.open_sync()
    assert set(stored.load_results_sync()) == {"nightly", "stale"}
    stored.close_sync()
    (tmp_path / "backups" / "old" / "last-year.tar").unlink()
    assert main(["readiness", "-c", str(path), "--format", "json"]) == 1  # recorded: still old
    capsys.readouterr()
    assert main(["readiness", "-c", str(path), "--format", "json", "--refresh"]) == 1
    refreshed = systems_of(json.loads(capsys.readouterr().out), "water")["billing"]
    assert refreshed["reasons"] == [
        "stale: no file found: no file matches " + str(tmp_path / "backups" / "old" / "*.tar")
    ]


class Daemon(AgentProcess):
    port: int

    def __init__(self, config: Path, port: int) -> None:
        super().__init__(config, port=port)

    def get(self, path: str) -> tuple[int, str]:  # type: ignore[override]  # pages are text
        status, body = super().get(path)
        return status, body.decode()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    path = backup_setup(tmp_path, port, interval="300ms")
    # `stale` must not run during the test: its result comes from the store.
    assert start_offset("stale", 3600) > 120
    record(
        tmp_path / "state",
        {"stale": res(Status.CRITICAL, "old", last_success_timestamp=time.time() - 400 * D)},
        {"stale": "backup_files"},
    )
    with Daemon(path, port) as d:
        d.wait_ready()
        yield d


def test_daemon_serves_departments_metrics_and_pages(daemon: Daemon) -> None:
    def scada_ready() -> dict[str, Any] | None:
        doc = json.loads(daemon.get("/api/v1/departments")[1])
        return doc if systems_of(doc, "water")["scada"]["ready"] else None

    doc = wait_until(scada_ready, what="the nightly check to run")
    assert doc is not None
    water = doc["departments"][0]
    assert water["ready"] is False
    billing = systems_of(doc, "water")["billing"]
    assert billing["reasons"] == ["stale: newest file 400 d old, RPO 24 h"]  # from the store
    status, metrics = daemon.get("/metrics")
    assert status == 200
    assert 'vaktpost_backup_ready{department="water",system="scada"} 1.0' in metrics
    assert 'vaktpost_backup_ready{department="water",system="billing"} 0.0' in metrics
    assert 'vaktpost_backup_age_seconds{check="nightly"}' in metrics
    status, page = daemon.get("/")
    assert status == 200 and "Backup readiness" in page and "400 d / 24 h" in page
    status, printable = daemon.get("/readiness?department=water")
    assert status == 200 and printable.startswith("<!doctype html>") and "<script" not in printable
    status, body = daemon.get("/readiness?department=nope")
    assert status == 404 and json.loads(body) == {"error": "unknown department 'nope'"}
