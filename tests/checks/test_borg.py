"""borg check against real repositories: freshness, check, extract test, secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.base import CheckContext, Status
from checks.borg import BorgCheck, BorgConfig
from tests.backup_fixtures import PASSWORD, STALE_HOURS, WRONG_PASSWORD, Repo
from tests.helpers import require_binary

OFF = {"check_every": None, "restore_test_every": None}


def config(repo: Repo, **extra: Any) -> BorgConfig:
    base: dict[str, Any] = {
        "name": "backup",
        "type": "borg",
        "repository": str(repo.path),
        "password_file": str(repo.password_file),
    }
    return BorgConfig(**(base | extra))


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[list[str], dict[str, str]]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return await real(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    yield calls


async def test_fresh_archive_checked_and_extract_tested(
    borg_repo: Repo, ctx: CheckContext, spawned: list[tuple[list[str], dict[str, str]]]
) -> None:
    result = await BorgCheck(config(borg_repo, glob_archives="fresh-*"), ctx).run()
    assert result.status is Status.OK, result.message
    assert result.message.startswith("newest archive fresh-1 ")
    assert result.facts["age_seconds"] < 300
    assert result.facts["verify_ok"] == 1.0 and result.facts["restore_ok"] == 1.0
    assert "restore test passed" in result.message
    commands = [argv[argv.index("borg") + 1] for argv, _ in spawned]
    assert commands == ["list", "check", "list", "extract"]
    for argv, env in spawned:
        assert not any(PASSWORD in a or str(borg_repo.path) in a for a in argv)
        assert env["BORG_PASSCOMMAND"] == f"cat -- {borg_repo.password_file}"
        assert env["BORG_REPO"] == str(borg_repo.path)
        assert "BORG_PASSPHRASE" not in env
    assert list((ctx.state_dir / "restore-tests").iterdir()) == []


async def test_newest_of_all_archives_counts(borg_repo: Repo, ctx: CheckContext) -> None:
    result = await BorgCheck(config(borg_repo, **OFF), ctx).run()
    assert result.status is Status.OK
    assert result.message.startswith("newest archive fresh-1 ")


async def test_stale_archive_is_critical(borg_repo: Repo, ctx: CheckContext) -> None:
    result = await BorgCheck(config(borg_repo, glob_archives="stale-*", **OFF), ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == f"newest archive {STALE_HOURS} h old (max_age 26 h)"
    assert abs(result.facts["age_seconds"] - STALE_HOURS * 3600) < 600


async def test_no_matching_archive(borg_repo: Repo, ctx: CheckContext) -> None:
    result = await BorgCheck(config(borg_repo, glob_archives="other-*", **OFF), ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == f"no archive in repository {borg_repo.path} matching other-*"


async def test_wrong_passphrase_is_unknown_without_the_secret(
    borg_repo: Repo, ctx: CheckContext, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG_PASSWORD)
    result = await BorgCheck(config(borg_repo, password_file=str(wrong)), ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message == "cannot open repository: wrong passphrase"
    assert WRONG_PASSWORD not in result.message and PASSWORD not in result.message


async def test_unreadable_passphrase_file_is_unknown(borg_repo: Repo, ctx: CheckContext) -> None:
    result = await BorgCheck(config(borg_repo, password_file="/nonexistent/pw"), ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message == "cannot read the passphrase (password_file)"


async def test_missing_repository_is_critical(ctx: CheckContext, tmp_path: Path) -> None:
    require_binary("borg")
    pw = tmp_path / "pw"
    pw.write_text("x")
    cfg = BorgConfig(
        name="backup", type="borg", repository=str(tmp_path / "nope"), password_file=str(pw)
    )
    result = await BorgCheck(cfg, ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == "repository not found (no borg repository there)"


async def test_corrupted_segment_fails_check_and_extract(
    borg_corrupt: Repo, ctx: CheckContext
) -> None:
    result = await BorgCheck(config(borg_corrupt), ctx).run()
    assert result.status is Status.CRITICAL
    assert "repository check failed: Data integrity error" in result.message
    assert "restore test failed: extracting src/big.bin failed: Data integrity error" in (
        result.message
    )
    assert result.facts["verify_ok"] == 0.0 and result.facts["restore_ok"] == 0.0
    # A failed verdict is retried on the next run (a repair must be noticed quickly).
    again = await BorgCheck(config(borg_corrupt), ctx).run()
    assert again.facts["verify_at"] > result.facts["verify_at"]
