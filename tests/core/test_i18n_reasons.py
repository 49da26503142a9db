"""Readiness reasons in Swedish on pages for people (issue 14: "statuses and readiness
reasons included"); the JSON keeps them in English."""

from __future__ import annotations

import pytest

from agent.configload import load_config_text
from agent.readiness import report
from agent.web import readiness_render
from checks.base import CheckResult, Status
from core.i18n import reason

SAMPLES = [
    ("last checksum verification failed (5 h ago)", "misslyckades (för 5 h sedan)"),
    ("checksum never verified", "kontrollsumman har aldrig verifierats"),
    ("last repository check failed (2 d ago)", "förrådskontrollen misslyckades"),
    ("repository never checked (check_every is off)", "(check_every är av)"),
    (
        "last passed repository check 3 d ago, must be within 2 d (2 x check_every)",
        "för 3 d sedan, ska vara inom 2 d",
    ),
    ("last restore test failed (1 h ago)", "återläsningstestet misslyckades"),
    ("restore never tested", "återläsning aldrig testad"),
    ("last successful restore test 40 d ago, limit 30 d", "för 40 d sedan, gräns 30 d"),
    ("newest file 12 B, below min_size 1 KiB", "under min_size 1 KiB"),
    ("newest file shrank 80% against the previous one, limit 50%", "krympte 80% mot den förra"),
    ("check x is not configured", "kontrollen x finns inte"),
    ("check x is a tcp check, not a backup check", "ingen säkerhetskopiekontroll"),
    ("no result recorded yet: the check has not run", "kontrollen har inte körts"),
    ("could not be checked: wrong password", "kunde inte kontrolleras: wrong password"),
    ("no snapshot found: empty repository", "ingen ögonblicksbild hittad"),
    ("newest archive 2 d old, RPO 1 d", "nyaste arkiv är 2 d gammal, RPO 1 d"),
]


@pytest.mark.parametrize(("english", "swedish"), SAMPLES)
def test_every_reason_has_swedish_words(english: str, swedish: str) -> None:
    assert swedish in reason(english, "sv")
    assert swedish in reason(f"db-backup: {english}", "sv")
    assert reason(english, "en") == english


def test_the_swedish_page_shows_swedish_reasons_and_the_json_stays_english() -> None:
    config = load_config_text(
        """
agent: {name: a, language: sv}
checks:
  - {name: files, type: backup_files, path: /nonexistent/*.dump, max_age: 1d}
departments:
  - id: d
    systems: [{id: s, checks: [], backups: [{check: files, rpo: 1d}]}]
""",
        "t.yaml",
    )
    now = 1_767_261_600.0
    facts = {"last_success_timestamp": now - 3 * 86400, "age_seconds": 3 * 86400.0}
    doc = report(config, {"files": CheckResult(Status.CRITICAL, "old", facts, 0, now)}, now)
    (english,) = doc["departments"][0]["systems"][0]["backups"][0]["reasons"]
    assert english.startswith("newest file")
    page = readiness_render.page(doc, "sv")
    assert "nyaste fil är" in page and "newest file" not in page
