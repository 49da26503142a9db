"""Restore tests in the monthly report: when, passed or not, and how long against the
system's RTO (issue 14). The history keeps each test once, however often it is seen."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from agent.configload import load_config
from agent.history_component import HistoryComponent
from agent.results import ResultBook
from agent.state.sqlite import Store
from checks.base import CheckResult, Status
from tests.helpers import ROOT, vaktpost_cmd

CONFIG = """
agent: {{name: rep, state_dir: {state}, language: en, timezone: Europe/Stockholm}}
checks:
  - {{name: db-backup, type: restic, repository: /nonexistent, password_file: {pw}}}
departments:
  - id: social
    systems:
      - {{id: case, checks: [], rto: 30m, backups: [{{check: db-backup, rpo: 1d}}]}}
"""


def ts(day: int, hour: int) -> float:
    return datetime(2026, 11, day, hour, tzinfo=UTC).timestamp()


async def test_restore_tests_reach_the_report_once_each(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "s", pw=pw))
    config = load_config(str(cfg))
    book = ResultBook()
    book.configure(config.checks)
    store = Store(tmp_path / "s")
    await store.open()
    history = HistoryComponent(SimpleNamespace(config=config, book=book, store=store))
    tests = [(ts(3, 2), 1.0, 240.0), (ts(10, 2), 0.0, 55.0), (ts(17, 2), 1.0, 2400.0)]
    for at, ok, seconds in tests:
        facts = {"restore_test_at": at, "restore_ok": ok, "restore_seconds": seconds}
        for _ in range(3):  # every run of the check carries the last test again
            book.record("db-backup", CheckResult(Status.OK, "fine", facts, 0.1, at + 60))
            history._on_result(book.states["db-backup"])
        await history.flush()
    await store.close()

    done = await asyncio.to_thread(
        subprocess.run,
        vaktpost_cmd("report", "-c", str(cfg), "--month", "2026-11", "--format", "json"),
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (dept,) = json.loads(done.stdout)["departments"]
    got = [(r["passed"], r["duration_seconds"], r["within_rto"]) for r in dept["restore_tests"]]
    assert got == [(True, 240.0, True), (False, 55.0, True), (True, 2400.0, False)]
    assert {r["system"] for r in dept["restore_tests"]} == {"case"}
    assert all(r["rto_seconds"] == 1800.0 for r in dept["restore_tests"])
