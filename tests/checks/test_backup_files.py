"""backup_files against real files: fresh, stale, shrunk, checksums, unreadable, odd paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.state.sqlite import Store
from checks.backup_files import BackupFilesCheck, BackupFilesConfig
from checks.base import CheckContext, MemoryStateStore, Status
from checks.filescan import parse_size
from tests.backup_fixtures import unprivileged

HOUR = 3600.0


def config(pattern: Path | str, **extra: Any) -> BackupFilesConfig:
    return BackupFilesConfig(
        **({"name": "files", "type": "backup_files", "path": str(pattern)} | extra)
    )


def write(path: Path, size: int, age_hours: float = 1.0) -> Path:
    path.write_bytes(os.urandom(size))
    when = time.time() - age_hours * HOUR
    os.utime(path, (when, when))
    return path


def sha256sum_line(path: Path) -> str:
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"


async def test_fresh_file_is_ok_with_facts(tmp_path: Path, ctx: CheckContext) -> None:
    write(tmp_path / "db-1.dump", 2000, age_hours=30)
    newest = write(tmp_path / "db-2.dump", 2100, age_hours=2)
    result = await BackupFilesCheck(config(tmp_path / "db-*.dump"), ctx).run()
    assert result.status is Status.OK, result.message
    assert result.message.startswith(f"newest file {newest}, 2 h old, 2.1 KiB; 2 files")
    assert result.facts["size_bytes"] == 2100 and result.facts["count"] == 2
    assert abs(result.facts["age_seconds"] - 2 * HOUR) < 60
    assert result.facts["last_success_timestamp"] == newest.stat().st_mtime
    assert BackupFilesConfig.metric_facts["age_seconds"] == "backup_age_seconds"


async def test_stale_file_is_critical(tmp_path: Path, ctx: CheckContext) -> None:
    old = write(tmp_path / "db.dump", 2000, age_hours=31)
    result = await BackupFilesCheck(config(tmp_path / "*.dump"), ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == f"newest file {old} is 31 h old (max_age 26 h)"


async def test_too_small_is_critical_and_too_few_is_warning(
    tmp_path: Path, ctx: CheckContext
) -> None:
    tiny = write(tmp_path / "a.tar", 100)
    small = await BackupFilesCheck(config(tmp_path / "*.tar", min_size="1KiB"), ctx).run()
    assert small.status is Status.CRITICAL
    assert small.message == f"newest file {tiny} is 100 B, below min_size 1 KiB"
    few = await BackupFilesCheck(config(tmp_path / "*.tar", min_count=3), ctx).run()
    assert few.status is Status.WARNING
    assert few.message.endswith("only 1 files match, min_count 3")


async def test_shrunk_against_the_older_file_is_critical(tmp_path: Path, ctx: CheckContext) -> None:
    write(tmp_path / "db-1.dump", 100_000, age_hours=25)
    write(tmp_path / "db-2.dump", 10_000, age_hours=1)
    result = await BackupFilesCheck(config(tmp_path / "db-*.dump"), ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == (
        "newest file shrank 90% against the previous backup (98 KiB -> 9.8 KiB), limit 50%"
    )
    assert result.facts["shrink_percent"] == pytest.approx(90.0)
    assert result.facts["previous_size_bytes"] == 100_000


async def test_previous_size_survives_a_restart(tmp_path: Path) -> None:
    """One file overwritten nightly: only the state store remembers yesterday's size."""
    backup = tmp_path / "nightly.tar"
    cfg = config(backup)

    async def run() -> Any:
        store = Store(tmp_path / "state")
        await store.open()
        try:
            ctx = CheckContext(tmp_path / "state", "a", store=store)
            return await BackupFilesCheck(cfg, ctx).run()
        finally:
            await store.close()

    write(backup, 50_000, age_hours=20)
    assert (await run()).status is Status.OK
    write(backup, 4_000, age_hours=1)  # tonight's run: 92% smaller
    result = await run()
    assert result.status is Status.CRITICAL
    assert "newest file shrank 92% against the previous backup" in result.message
    again = await run()  # still the same newest file: still flagged
    assert again.status is Status.CRITICAL and again.facts["previous_size_bytes"] == 50_000


async def test_checksum_verified_and_mismatch_found(tmp_path: Path, ctx: CheckContext) -> None:
    dump = write(tmp_path / "db.dump", 5000)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(sha256sum_line(dump))
    cfg = config(tmp_path / "*.dump", checksum_file=str(sums))
    good = await BackupFilesCheck(cfg, ctx).run()
    assert good.status is Status.OK, good.message
    assert good.facts["verify_ok"] == 1.0
    assert "checksum verification passed" in good.message
    sums.write_text(f"{'0' * 64}  db.dump\n")
    # Same file, verification not yet due again: the passed verdict stands.
    assert (await BackupFilesCheck(cfg, ctx).run()).facts["verify_ok"] == 1.0
    later = CheckContext(ctx.state_dir, "a", clock=lambda: time.time() + 2 * 86400, store=ctx.store)
    bad = await BackupFilesCheck(cfg, later).run()
    assert bad.status is Status.CRITICAL
    assert f"; checksum verification failed: sha256 mismatch for {dump}: expected 00" in bad.message
    assert bad.facts["verify_ok"] == 0.0


async def test_checksum_file_per_backup_and_missing_entry(
    tmp_path: Path, ctx: CheckContext
) -> None:
    dump = write(tmp_path / "db-2.dump", 3000)
    (tmp_path / "db-2.dump.sha256").write_text(sha256sum_line(dump))
    cfg = config(tmp_path / "*.dump", checksum_file="{file}.sha256")
    assert (await BackupFilesCheck(cfg, ctx).run()).status is Status.OK
    other = BackupFilesCheck(config(tmp_path / "*.dump", checksum_file=str(tmp_path / "x")), ctx)
    (tmp_path / "x").write_text(f"{'a' * 64}  other.dump\n")
    result = await other.run()
    assert result.status is Status.CRITICAL
    assert result.message.endswith(f"{tmp_path / 'x'} has no sha256 for {dump}")


async def test_missing_directory_and_no_match(tmp_path: Path, ctx: CheckContext) -> None:
    gone = await BackupFilesCheck(config(tmp_path / "nope" / "*.tar"), ctx).run()
    assert gone.status is Status.CRITICAL
    assert gone.message == f"directory {tmp_path / 'nope'} does not exist"
    empty = await BackupFilesCheck(config(tmp_path / "*.tar"), ctx).run()
    assert empty.status is Status.CRITICAL
    assert empty.message == f"no file matches {tmp_path / '*.tar'}"


async def test_symlink_loop_is_reported_not_fatal(tmp_path: Path, ctx: CheckContext) -> None:
    (tmp_path / "a.tar").symlink_to(tmp_path / "b.tar")
    (tmp_path / "b.tar").symlink_to(tmp_path / "a.tar")
    only_loops = await BackupFilesCheck(config(tmp_path / "*.tar"), ctx).run()
    assert only_loops.status is Status.UNKNOWN
    assert only_loops.message.startswith(f"no readable file matches {tmp_path / '*.tar'}: ")
    assert f"symlink loop at {tmp_path / 'a.tar'}" in only_loops.message
    write(tmp_path / "c.tar", 500)
    mixed = await BackupFilesCheck(config(tmp_path / "*.tar"), ctx).run()
    assert mixed.status is Status.OK
    assert mixed.message.endswith(f"symlink loop at {tmp_path / 'b.tar'}")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory `nobody` can traverse (pytest's tmp dirs are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="vaktpost-files-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


async def test_unreadable_directory_is_unknown(shared_dir: Path) -> None:
    backups = shared_dir / "backups"
    backups.mkdir(mode=0o700)
    write(backups / "db.dump", 1000)
    ctx = CheckContext(shared_dir, "a", store=MemoryStateStore())
    with unprivileged():
        result = await BackupFilesCheck(config(backups / "*.dump"), ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message == f"cannot list {backups}: permission denied: {backups}"


async def test_unreadable_file_cannot_be_verified(shared_dir: Path) -> None:
    dump = write(shared_dir / "db.dump", 1000)
    (shared_dir / "SUMS").write_text(sha256sum_line(dump))
    (shared_dir / "SUMS").chmod(0o644)
    dump.chmod(0o600)
    ctx = CheckContext(shared_dir, "a", store=MemoryStateStore())
    cfg = config(shared_dir / "*.dump", checksum_file=str(shared_dir / "SUMS"))
    with unprivileged():
        result = await BackupFilesCheck(cfg, ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message.endswith(f"cannot read {dump}: permission denied: {dump}")
    assert "verify_ok" not in result.facts  # no verdict on the backup itself


async def test_file_changing_during_verification_is_not_a_verdict(
    tmp_path: Path, ctx: CheckContext
) -> None:
    dump = write(tmp_path / "db.dump", 64 * 1024 * 1024)
    (tmp_path / "SUMS").write_text(sha256sum_line(dump))
    stop = threading.Event()

    def keep_writing() -> None:  # a backup job still appending to the file
        with dump.open("ab") as f:
            while not stop.is_set():
                f.write(b"x")
                f.flush()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        cfg = config(tmp_path / "*.dump", checksum_file=str(tmp_path / "SUMS"))
        result = await BackupFilesCheck(cfg, ctx).run()
    finally:
        stop.set()
        writer.join()
    assert result.status is Status.WARNING
    assert result.message.endswith(
        f"{dump} changed while being verified (still being written?); verification retried next run"
    )
    assert await ctx.store.get_state("files", "verify") is None


def test_sizes_parse() -> None:
    assert parse_size("500kB") == 500_000
    assert parse_size("10MiB") == 10 * 1024 * 1024
    assert parse_size("1G") == 10**9
    assert parse_size(42) == 42
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("ten megs")
