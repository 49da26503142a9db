"""backup_files: the newest file matching a glob: age, size, sudden shrink, checksum, count."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from checks import backup_state
from checks.backup_state import VERIFY
from checks.backup_tool import ToolError
from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical, ok, warning
from checks.filescan import (
    FileInfo,
    ScanError,
    Verdict,
    checksum_path,
    parse_size,
    scan,
    verify_checksum,
)
from checks.repository import BACKUP_METRICS
from core.durations import Duration
from core.humanize import duration, size
from core.status import Status

WORD = "checksum verification"
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class BackupFilesConfig(CheckConfig):
    type: Literal["backup_files"]
    path: Annotated[str, Field(min_length=1)]
    max_age: Annotated[Duration, Field(gt=0)] = 26 * 3600.0
    min_size: Size = 1
    max_shrink_percent: Annotated[float, Field(gt=0, le=100)] | None = 50.0
    checksum_file: str | None = None
    verify_every: Annotated[Duration, Field(gt=0)] = 86400.0
    min_count: Annotated[int, Field(ge=1)] = 1

    metric_facts: ClassVar[dict[str, str]] = dict(BACKUP_METRICS)
    is_backup: ClassVar[bool] = True
    backup_kind: ClassVar[str] = "files"
    backup_noun: ClassVar[str] = "file"


class BackupFilesCheck:
    def __init__(self, config: BackupFilesConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    async def run(self) -> CheckResult:
        try:
            found = await asyncio.to_thread(scan, self.config.path)
        except ScanError as exc:
            return CheckResult(exc.status, exc.reason)
        if not found.files:
            return unknown_or_missing(self.config.path, found.skipped)
        files = sorted(found.files, key=lambda f: f.mtime, reverse=True)
        newest = files[0]
        previous = await self.previous_size(newest, files[1] if len(files) > 1 else None)
        verified, undecided = await self.maybe_verify(newest)
        result = self.evaluate(newest, previous, len(files), verified)
        notes = [*found.skipped, *([undecided.detail] if undecided else [])]
        if not notes:
            return result
        status = result.status
        if undecided and undecided.undecided and status.badness < undecided.undecided.badness:
            status = undecided.undecided
        return CheckResult(status, f"{result.message}; {'; '.join(notes)}", result.facts)

    async def previous_size(self, newest: FileInfo, second: FileInfo | None) -> int | None:
        """Size of the newest file before this one; kept in the store across restarts.

        A nightly job that overwrites one file leaves no second file to compare
        with, so the size seen before the newest changed is remembered.
        """
        store, name = self.ctx.store, self.config.name
        seen = await store.get_state(name, "newest")
        current = {"path": newest.path, "mtime": newest.mtime, "size": newest.size}
        if not isinstance(seen, dict):
            prev = second.size if second else None
            await store.set_state(name, "newest", {**current, "previous_size": prev})
            return prev
        if (seen.get("path"), seen.get("mtime")) != (newest.path, newest.mtime):
            prev = seen.get("size")
            await store.set_state(name, "newest", {**current, "previous_size": prev})
            return prev if isinstance(prev, int) else None
        prev = seen.get("previous_size")
        return prev if isinstance(prev, int) else None

    async def maybe_verify(
        self, newest: FileInfo
    ) -> tuple[backup_state.Outcome | None, Verdict | None]:
        """Checksum verification on its own schedule, and for every new newest file."""
        if self.config.checksum_file is None:
            return None, None
        sums = checksum_path(self.config.checksum_file, newest.path)
        stop = threading.Event()
        undecided: list[Verdict] = []

        async def action() -> tuple[bool, str]:
            verdict = await asyncio.to_thread(verify_checksum, newest, sums, stop)
            if verdict.undecided is not None:
                undecided.append(verdict)
                # Not a verdict on the backup; a transient error keeps the last outcome.
                raise ToolError(Status.UNKNOWN, verdict.detail, transient=True)
            return verdict.ok, verdict.detail

        try:
            outcome = await backup_state.run_if_due(
                self.ctx,
                self.config.name,
                VERIFY,
                self.config.verify_every,
                action,
                subject=f"{newest.path}@{newest.mtime} against {sums}",
            )
        finally:
            stop.set()  # a cancelled check must not leave a thread hashing gigabytes
        return outcome, (undecided[0] if undecided else None)

    def evaluate(
        self,
        newest: FileInfo,
        previous: int | None,
        count: int,
        verified: backup_state.Outcome | None,
    ) -> CheckResult:
        cfg = self.config
        now = self.ctx.clock()
        age = max(0.0, now - newest.mtime)
        facts: dict[str, float] = {
            "last_success_timestamp": newest.mtime,
            "age_seconds": age,
            "size_bytes": float(newest.size),
            "count": float(count),
        }
        facts |= backup_state.facts(VERIFY, verified)
        if previous is not None:
            facts["previous_size_bytes"] = float(previous)
            facts["shrink_percent"] = shrink_percent(previous, newest.size)
        problems = self.shape_problems(newest, age, previous)
        verify_problem = backup_state.problem(VERIFY, verified, WORD)
        if verify_problem:
            problems.append(verify_problem)
        if problems:
            return critical("; ".join(problems), **facts)
        summary = f"newest file {newest.path}, {duration(age)} old, {size(newest.size)}"
        if count < cfg.min_count:
            return warning(
                f"{summary}; only {count} files match, min_count {cfg.min_count}", **facts
            )
        parts = [summary, f"{count} file{'s' if count != 1 else ''}"]
        if verified is not None:
            parts.append(backup_state.note(VERIFY, verified, now, WORD))
        return ok("; ".join(parts), **facts)

    def shape_problems(self, newest: FileInfo, age: float, previous: int | None) -> list[str]:
        """Age, size and sudden shrink of the newest file."""
        cfg = self.config
        problems = []
        if age > cfg.max_age:
            problems.append(
                f"newest file {newest.path} is {duration(age)} old "
                f"(max_age {duration(cfg.max_age)})"
            )
        if newest.size < cfg.min_size:
            problems.append(
                f"newest file {newest.path} is {size(newest.size)}, "
                f"below min_size {size(cfg.min_size)}"
            )
        shrink = shrink_percent(previous, newest.size)
        if cfg.max_shrink_percent is not None and shrink > cfg.max_shrink_percent:
            problems.append(
                f"newest file shrank {shrink:.0f}% against the previous backup "
                f"({size(previous or 0)} -> {size(newest.size)}), "
                f"limit {cfg.max_shrink_percent:g}%"
            )
        return problems


def shrink_percent(previous: int | None, current: int) -> float:
    if not previous or previous <= 0:
        return 0.0
    return max(0.0, (previous - current) / previous * 100.0)


def unknown_or_missing(pattern: str, skipped: list[str]) -> CheckResult:
    if skipped:
        # Matches exist but none could be read: vaktpost cannot tell.
        return CheckResult(
            Status.UNKNOWN, f"no readable file matches {pattern}: {'; '.join(skipped)}"
        )
    return critical(f"no file matches {pattern}", count=0.0)


TYPE = CheckType(BackupFilesConfig, BackupFilesCheck)
