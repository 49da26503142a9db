"""restic: newest snapshot age, `restic check`, and a one-file restore test."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from checks.backup_tool import ToolError, ToolOutput, run_tool, scan_lines, summarize, tool_failure
from checks.base import CheckType
from checks.repository import (
    RESTORE_MAX_BYTES,
    RepositoryCheck,
    RepositoryConfig,
    RestoreCandidate,
    Snapshot,
)
from core.status import Status

CANDIDATE_LIMIT = 1000
_SUBSET = re.compile(r"^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$")
_GLOB_SPECIAL = re.compile(r"([*?\[\\])")


class ResticConfig(RepositoryConfig):
    type: Literal["restic"]
    backup_noun: ClassVar[str] = "snapshot"
    host: str | None = None
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    read_data_subset: Annotated[str, Field(min_length=1)] | None = None

    @field_validator("read_data_subset")
    @classmethod
    def _subset(cls, value: str | None) -> str | None:
        if value is not None and not _SUBSET.match(value):
            raise ValueError(
                f"invalid read_data_subset {value!r}: use a share (10%), n/m (1/7) or a size (1G)"
            )
        return value


def known_error(out: ToolOutput) -> ToolError | None:
    """restic exits 1 for nearly everything: the reason is in stderr."""
    err = out.stderr
    if "wrong password or no key found" in err:
        return ToolError(Status.UNKNOWN, "cannot open repository: wrong password or no key found")
    if "Is there a repository at the following location" in err or "unable to open config" in err:
        return ToolError(Status.CRITICAL, "repository not found (no restic repository there)")
    if (
        "Resolving password failed" in err
        or "empty password" in err
        or "password from stdin" in err
    ):
        return ToolError(Status.UNKNOWN, f"no usable password: {summarize(err) or 'none given'}")
    if "already locked" in err or "unable to create lock" in err:
        return ToolError(
            Status.UNKNOWN,
            "repository is locked by another restic process (backup or prune running?)",
            transient=True,
        )
    return None


def classify(out: ToolOutput) -> ToolError:
    return tool_failure("restic", out, known_error)


class ResticCheck(RepositoryCheck):
    tool = "restic"
    config: ResticConfig

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The repository goes in the environment, not argv: URLs may hold credentials.
        env["RESTIC_REPOSITORY"] = self.config.repository
        env.pop("RESTIC_REPOSITORY_FILE", None)
        if self.config.password_file:
            for name in ("RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND"):
                env.pop(name, None)
            env["RESTIC_PASSWORD_FILE"] = self.config.password_file
        env.setdefault("RESTIC_CACHE_DIR", str(self.ctx.state_dir / "restic-cache"))
        env.setdefault("RESTIC_PROGRESS_FPS", "0.0167")  # no progress bars in our output
        return env

    def filters(self) -> list[str]:
        cfg = self.config
        args = ["--host", cfg.host] if cfg.host else []
        if cfg.tags:
            args += ["--tag", ",".join(cfg.tags)]
        for path in cfg.paths:
            args += ["--path", path]
        return args

    def filter_text(self) -> str:
        cfg = self.config
        parts = [f"host={cfg.host}"] if cfg.host else []
        parts += [f"tags={','.join(cfg.tags)}"] if cfg.tags else []
        parts += [f"paths={','.join(cfg.paths)}"] if cfg.paths else []
        return f" matching {' '.join(parts)}" if parts else ""

    async def _restic(self, *args: str) -> ToolOutput:
        out = await run_tool(["restic", *args], self.env())
        if out.code != 0:
            raise classify(out)
        return out

    async def newest(self) -> Snapshot | None:
        out = await self._restic(
            "snapshots", "--json", "--no-lock", "--latest", "1", *self.filters()
        )
        try:
            items = json.loads(out.stdout or b"[]")
            snapshots = [
                Snapshot(
                    s["short_id"], datetime.fromisoformat(s["time"]).timestamp(), s["short_id"]
                )
                for s in items or []
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolError(
                Status.UNKNOWN, f"unexpected `restic snapshots` output: {exc}"
            ) from None
        return max(snapshots, key=lambda s: s.time, default=None)

    async def verify(self) -> tuple[bool, str]:
        args = ["check"]
        if self.config.read_data_subset:
            args += ["--read-data-subset", self.config.read_data_subset]
        out = await run_tool(["restic", *args], self.env())
        if out.code == 0:
            return True, "no errors were found"
        error = known_error(out)
        if error is not None:
            raise error  # could not open or lock it: no verdict on its integrity
        text = out.stdout.decode("utf-8", "replace") + "\n" + out.stderr
        return False, summarize(text) or f"restic check ended with exit code {out.code}"

    async def candidates(self, snapshot: Snapshot) -> list[RestoreCandidate]:
        found: list[RestoreCandidate] = []

        def take(line: bytes) -> bool:
            try:
                node = json.loads(line)
            except ValueError:
                return True
            if node.get("type") == "file" and 0 <= node.get("size", -1) <= RESTORE_MAX_BYTES:
                found.append(RestoreCandidate(node["path"], int(node["size"])))
            return len(found) < CANDIDATE_LIMIT

        out = await scan_lines(
            ["restic", "ls", "--json", "--no-lock", snapshot.id], self.env(), take
        )
        if out.code != 0:
            raise classify(out)
        return found

    async def restore(self, snapshot: Snapshot, candidate: RestoreCandidate, into: Path) -> None:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", candidate.path)
        out = await run_tool(
            [
                "restic",
                "restore",
                snapshot.id,
                "--no-lock",
                "--target",
                str(into),
                "--include",
                pattern,
            ],
            self.env(),
        )
        if out.code != 0:
            raise known_error(out) or ToolError(
                Status.CRITICAL, f"restoring {candidate.path} failed: {summarize(out.stderr)}"
            )


TYPE = CheckType(ResticConfig, ResticCheck)
