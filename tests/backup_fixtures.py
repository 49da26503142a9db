"""Real restic and borg repositories for tests, made in temporary directories.

Repositories are module-scoped (each restic/borg command costs ~0.5 s, restic
init ~3 s); tests only read them, and each test gets its own state store.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from checks.base import CheckContext, MemoryStateStore
from tests.helpers import require_binary

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "tr0ub4dor&3-wrong"
STALE_HOURS = 31


def local_time(ts: float, sep: str = " ") -> str:
    """restic --time and borg --timestamp read local time."""
    return time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.localtime(ts))


def make_source(root: Path, big: int = 200_000) -> Path:
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(big))
    (src / "sub" / "notes.txt").write_text("readiness matters\n")
    return src


def corrupt_largest(files: list[Path]) -> Path:
    """Flip one byte in the middle of the largest file (same size: only a read finds it)."""
    target = max(files, key=lambda p: p.stat().st_size)
    target.chmod(0o600)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


@dataclass
class Repo:
    tool: str
    path: Path
    password_file: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [self.tool, *args],
            env={**os.environ, **self.env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"{self.tool} {args}: {proc.stderr}"
        return proc.stdout


def _password_files(root: Path) -> tuple[Path, Path]:
    good, wrong = root / "password", root / "wrong-password"
    good.write_text(PASSWORD + "\n")
    wrong.write_text(WRONG_PASSWORD + "\n")
    good.chmod(0o600)
    return good, wrong


def make_restic(root: Path, stale: bool = True, corrupt: bool = False) -> Repo:
    """Snapshots: host h-fresh (now, tag daily) and host h-stale (31 h ago)."""
    require_binary("restic")
    good, _ = _password_files(root)
    repo = Repo(
        "restic",
        root / "repo",
        good,
        {
            "RESTIC_REPOSITORY": str(root / "repo"),
            "RESTIC_PASSWORD_FILE": str(good),
            "RESTIC_CACHE_DIR": str(root / "cache"),
        },
    )
    repo.run("init", "-q")
    src = make_source(root)
    if corrupt:  # one file only, so the restore test must pick the corrupted one
        (src / "sub" / "notes.txt").unlink()
    repo.run("backup", "-q", "--host", "h-fresh", "--tag", "daily", str(src))
    if stale:
        when = local_time(time.time() - STALE_HOURS * 3600)
        repo.run("backup", "-q", "--host", "h-stale", "--time", when, str(src))
    if corrupt:
        corrupt_largest([p for p in (repo.path / "data").rglob("*") if p.is_file()])
    return repo


def make_borg(root: Path, corrupt: bool = False) -> Repo:
    """Archives: fresh-1 (now) and stale-1 (31 h ago)."""
    require_binary("borg")
    good, _ = _password_files(root)
    repo = Repo(
        "borg",
        root / "repo",
        good,
        {
            "BORG_REPO": str(root / "repo"),
            "BORG_PASSCOMMAND": f"cat {good}",
            "BORG_BASE_DIR": str(root / "base"),
        },
    )
    repo.run("init", "-e", "repokey-blake2")
    src = make_source(root)
    if corrupt:
        (src / "sub" / "notes.txt").unlink()
    repo.run("create", "::fresh-1", str(src.relative_to(root)), cwd=root)
    if not corrupt:
        stale = local_time(time.time() - STALE_HOURS * 3600, "T")
        repo.run("create", "--timestamp", stale, "::stale-1", str(src.relative_to(root)), cwd=root)
    else:
        corrupt_largest([p for p in (repo.path / "data").rglob("*") if p.is_file()])
    return repo


@pytest.fixture(scope="module")
def restic_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_restic(tmp_path_factory.mktemp("restic"))


@pytest.fixture(scope="module")
def restic_corrupt(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_restic(tmp_path_factory.mktemp("restic-bad"), stale=False, corrupt=True)


@pytest.fixture(scope="module")
def borg_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_borg(tmp_path_factory.mktemp("borg"))


@pytest.fixture(scope="module")
def borg_corrupt(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_borg(tmp_path_factory.mktemp("borg-bad"), corrupt=True)


@pytest.fixture
def ctx(tmp_path: Path) -> CheckContext:
    """A fresh context per test: its own state dir and a store that forgets."""
    return CheckContext(tmp_path / "state", "test-agent", store=MemoryStateStore())


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Act as `nobody` for file access; root would read anything (tests run as root in CI)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
