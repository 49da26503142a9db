"""borg: newest archive age, `borg check`, and a one-file extract test."""

from __future__ import annotations

import json
import os
import re
import shlex
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

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

# (regex on borg's stderr, status, reason, transient)
_KNOWN = [
    ("is incorrect", Status.UNKNOWN, "cannot open repository: wrong passphrase", False),
    (
        "BORG_PASSCOMMAND failed",
        Status.UNKNOWN,
        "cannot read the passphrase (password_file)",
        False,
    ),
    ("can not acquire a passphrase", Status.UNKNOWN, "no passphrase configured", False),
    (
        r"^Repository .* does not exist",
        Status.CRITICAL,
        "repository not found (no borg repository there)",
        False,
    ),
    (r"is not a valid repository", Status.CRITICAL, "no borg repository at that path", False),
    (
        "previously located at",
        Status.UNKNOWN,
        "repository moved since last seen; set BORG_RELOCATED_REPO_ACCESS_IS_OK=yes once",
        False,
    ),
    (
        "Failed to create/acquire the lock",
        Status.UNKNOWN,
        "repository is locked by another borg process (backup or prune running?)",
        True,
    ),
]


class BorgConfig(RepositoryConfig):
    type: Literal["borg"]
    backup_noun: ClassVar[str] = "archive"
    glob_archives: str | None = None  # e.g. "srv-db-*" when several machines share a repo
    verify_data: bool = False  # `borg check --verify-data`: reads and decrypts every chunk


def known_error(out: ToolOutput) -> ToolError | None:
    for text, status, reason, transient in _KNOWN:
        if re.search(text, out.stderr, re.MULTILINE):
            return ToolError(status, reason, transient)
    return None


def classify(out: ToolOutput) -> ToolError:
    return tool_failure("borg", out, known_error)


class BorgCheck(RepositoryCheck):
    tool = "borg"
    noun = "archive"
    config: BorgConfig

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["BORG_REPO"] = self.config.repository  # not argv: ssh:// URLs may carry users
        if self.config.password_file:
            for name in ("BORG_PASSPHRASE", "BORG_PASSPHRASE_FD", "BORG_PASSCOMMAND"):
                env.pop(name, None)
            # borg runs this itself; the passphrase never passes through the agent.
            env["BORG_PASSCOMMAND"] = f"cat -- {shlex.quote(self.config.password_file)}"
        # Our own cache and security dir: never contend with the backup job's cache lock.
        env.setdefault("BORG_BASE_DIR", str(self.ctx.state_dir / "borg"))
        # Reading is harmless; without this borg would prompt (and fail) for a plain repo.
        env.setdefault("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        return env

    def filter_text(self) -> str:
        glob = self.config.glob_archives
        return f" matching {glob}" if glob else ""

    async def newest(self) -> Snapshot | None:
        args = ["borg", "list", "--json", "--last", "1"]
        if self.config.glob_archives:
            args += ["--glob-archives", self.config.glob_archives]
        out = await run_tool(args, self.env())
        if out.code != 0:
            raise classify(out)
        try:
            archives = json.loads(out.stdout)["archives"]
            # borg writes local time without an offset; fromisoformat reads it as local too.
            found = [
                Snapshot(a["name"], datetime.fromisoformat(a["time"]).timestamp(), a["name"])
                for a in archives
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolError(Status.UNKNOWN, f"unexpected `borg list` output: {exc}") from None
        return max(found, key=lambda s: s.time, default=None)

    async def verify(self) -> tuple[bool, str]:
        args = ["borg", "check"] + (["--verify-data"] if self.config.verify_data else [])
        out = await run_tool(args, self.env())
        if out.code == 0:
            return True, "no problems found"
        error = known_error(out)
        if error is not None:
            raise error  # could not open or lock it: no verdict on its integrity
        return False, summarize(out.stderr) or f"borg check ended with exit code {out.code}"

    async def candidates(self, snapshot: Snapshot) -> list[RestoreCandidate]:
        found: list[RestoreCandidate] = []

        def take(line: bytes) -> bool:
            try:
                item = json.loads(line)
            except ValueError:
                return True
            size = item.get("size", -1)
            if item.get("type") == "-" and 0 <= size <= RESTORE_MAX_BYTES:
                found.append(RestoreCandidate(item["path"], int(size)))
            return len(found) < CANDIDATE_LIMIT

        out = await scan_lines(
            ["borg", "list", "--json-lines", f"::{snapshot.id}"], self.env(), take
        )
        if out.code != 0:
            raise classify(out)
        return found

    async def restore(self, snapshot: Snapshot, candidate: RestoreCandidate, into: Path) -> None:
        # pp: (path prefix, by whole components) so a name like "re:x" is not read as a
        # pattern style; for a regular file it matches only that file.
        args = ["borg", "extract", f"::{snapshot.id}", f"pp:{candidate.path}"]
        out = await run_tool(args, self.env(), cwd=str(into))
        if out.code != 0:
            raise known_error(out) or ToolError(
                Status.CRITICAL, f"extracting {candidate.path} failed: {summarize(out.stderr)}"
            )


TYPE = CheckType(BorgConfig, BorgCheck)
