"""What restic and borg checks share: newest snapshot age, periodic check, periodic restore test.

Each tool module supplies how to list, check and restore; this module decides
when to do what and what the result means.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field

from checks import backup_state
from checks.backup_state import RESTORE, VERIFY, Outcome
from checks.backup_tool import ToolError, redact, repository_lock
from checks.base import CheckConfig, CheckContext, CheckResult, critical, ok
from core.durations import Duration
from core.humanize import duration, rfc3339
from core.status import Status

RESTORE_MAX_BYTES = 64 * 1024 * 1024  # a restore test proves readability; it need not be big
BACKUP_METRICS = {
    "last_success_timestamp": "backup_last_success_timestamp_seconds",
    "age_seconds": "backup_age_seconds",
    "size_bytes": "backup_size_bytes",
}


class RepositoryConfig(CheckConfig):
    repository: str
    password_file: str | None = None
    # 26 h, not 24 h: a daily job that starts or ends a little later must not flap.
    max_age: Annotated[Duration, Field(gt=0)] = 26 * 3600.0
    check_every: Annotated[Duration, Field(gt=0)] | None = 86400.0
    restore_test_every: Annotated[Duration, Field(gt=0)] | None = 7 * 86400.0

    metric_facts: ClassVar[Mapping[str, str]] = BACKUP_METRICS
    # The repository check and restore test run inside the check's timeout: a
    # ping's 10 s would kill them. Hourly is plenty for a daily backup's RPO.
    type_defaults: ClassVar[Mapping[str, float]] = {"timeout": 3600.0, "interval": 3600.0}
    is_backup: ClassVar[bool] = True
    backup_kind: ClassVar[str] = "repository"


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: float  # unix seconds
    label: str  # how to name it in a message


@dataclass(frozen=True)
class RestoreCandidate:
    path: str
    size: int


def pick_candidate(candidates: list[RestoreCandidate], now: float) -> RestoreCandidate | None:
    """A different file each day, preferring non-empty ones: over time many files get read."""
    non_empty = [c for c in candidates if c.size > 0] or candidates
    if not non_empty:
        return None
    return non_empty[int(now // 86400) % len(non_empty)]


def verify_restored(root: Path, candidate: RestoreCandidate) -> tuple[bool, str]:
    """Read the restored file to its end and compare the size the repository recorded."""
    target = root / candidate.path.lstrip("/")
    if not target.is_file():
        return False, f"{candidate.path} was not restored"
    read = 0
    with target.open("rb") as f:
        while chunk := f.read(1 << 20):
            read += len(chunk)
    if read != candidate.size:
        return False, f"{candidate.path} restored with {read} bytes, expected {candidate.size}"
    return True, f"restored {candidate.path} ({read} bytes)"


class RepositoryCheck(ABC):
    tool: ClassVar[str]
    noun: ClassVar[str] = "snapshot"

    def __init__(self, config: RepositoryConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    # -- what each tool supplies ------------------------------------------------
    @abstractmethod
    def env(self) -> dict[str, str]: ...

    @abstractmethod
    async def newest(self) -> Snapshot | None: ...

    @abstractmethod
    async def verify(self) -> tuple[bool, str]: ...

    @abstractmethod
    async def candidates(self, snapshot: Snapshot) -> list[RestoreCandidate]: ...

    @abstractmethod
    async def restore(self, snapshot: Snapshot, candidate: RestoreCandidate, into: Path) -> None:
        """Restore one file under `into`; raise ToolError when the tool fails."""

    # -- shared -------------------------------------------------------------------
    @property
    def where(self) -> str:
        return redact(self.config.repository)

    async def run(self) -> CheckResult:
        try:
            async with repository_lock(self.config.repository):
                return await self._run_locked()
        except ToolError as exc:
            return CheckResult(exc.status, exc.reason)
        except OSError as exc:  # e.g. the state directory for restore tests is not writable
            return CheckResult(Status.UNKNOWN, f"{self.tool}: {exc.strerror or exc}")

    async def _run_locked(self) -> CheckResult:
        cfg, name = self.config, self.config.name
        newest = await self.newest()
        if newest is None:
            return critical(f"no {self.noun} in repository {self.where}{self.filter_text()}")
        verified = await backup_state.run_if_due(
            self.ctx, name, VERIFY, cfg.check_every, self.verify
        )
        restored = await backup_state.run_if_due(
            self.ctx,
            name,
            RESTORE,
            cfg.restore_test_every,
            lambda: self.restore_test(newest),
        )
        return self.evaluate(newest, verified, restored)

    def filter_text(self) -> str:
        return ""

    def evaluate(
        self, newest: Snapshot, verified: Outcome | None, restored: Outcome | None
    ) -> CheckResult:
        now = self.ctx.clock()
        age = max(0.0, now - newest.time)
        facts = {"last_success_timestamp": newest.time, "age_seconds": age}
        facts |= backup_state.facts(VERIFY, verified) | backup_state.facts(RESTORE, restored)
        problems = []
        if age > self.config.max_age:
            problems.append(
                f"newest {self.noun} {duration(age)} old (max_age {duration(self.config.max_age)})"
            )
        for kind, outcome in ((VERIFY, verified), (RESTORE, restored)):
            text = backup_state.problem(kind, outcome)
            if text:
                problems.append(text)
        if problems:
            return critical("; ".join(problems), **facts)
        parts = [
            f"newest {self.noun} {newest.label} {duration(age)} old ({rfc3339(newest.time)})",
            backup_state.note(VERIFY, verified, now),
            backup_state.note(RESTORE, restored, now),
        ]
        return ok("; ".join(parts), **facts)

    async def restore_test(self, snapshot: Snapshot) -> tuple[bool, str]:
        candidate = pick_candidate(await self.candidates(snapshot), self.ctx.clock())
        if candidate is None:
            return False, f"{self.noun} {snapshot.label} holds no file to restore"
        base = self.ctx.state_dir / "restore-tests"
        base.mkdir(parents=True, exist_ok=True)
        into = Path(tempfile.mkdtemp(prefix=f"{self.config.name}-", dir=base))
        try:
            os.chmod(into, 0o700)  # restored data may be confidential
            await self.restore(snapshot, candidate, into)
            return await asyncio.to_thread(verify_restored, into, candidate)
        finally:
            shutil.rmtree(into, ignore_errors=True)
