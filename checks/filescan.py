"""Filesystem work of backup_files, run in a worker thread: glob, stat, sha256.

Every OS error becomes words an operator can act on; nothing here raises past
ScanError.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import stat
import threading
from dataclasses import dataclass, field

from core.status import Status

MAX_SKIPPED_SHOWN = 3
SUMS_CAP = 16 * 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*$")
_GNU_SUM = re.compile(r"^\\?([0-9a-fA-F]{64}) [ *](.+)$")
_BSD_SUM = re.compile(r"^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$")


class ScanError(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float


@dataclass
class Scan:
    files: list[FileInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str
    # Set when there is no verdict: UNKNOWN when unreadable, WARNING when it changed meanwhile.
    undecided: Status | None = None


def parse_size(value: object) -> object:
    """Bytes from 1024, "500kB" (1000), "10MiB" (1024), "1G"; other input left to pydantic."""
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"invalid size {value!r}: use bytes or a unit, e.g. 500kB, 10MiB, 1G")
    number, prefix, binary = match.groups()
    power = " KMGT".index(prefix.upper() or " ")
    return int(float(number) * (1024 if binary else 1000) ** power)


def why(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"symlink loop at {path}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {path}"
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return f"dangling symlink {path}"
        return f"{path} vanished while scanning"
    return f"{path}: {exc.strerror or exc}"


def static_prefix(pattern: str) -> str:
    """The directory part before the first glob character: it must exist and be readable."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else ".")


def check_base(base: str) -> None:
    try:
        st = os.stat(base)
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(base):
                pass
    except FileNotFoundError:
        raise ScanError(Status.CRITICAL, f"directory {base} does not exist") from None
    except OSError as exc:
        raise ScanError(Status.UNKNOWN, f"cannot list {base}: {why(base, exc)}") from None


def scan(pattern: str) -> Scan:
    pattern = os.path.expanduser(pattern)
    check_base(static_prefix(pattern))
    found = Scan()
    skipped: list[str] = []
    for path in glob.iglob(pattern, recursive=True):
        try:
            st = os.stat(path)
        except OSError as exc:
            skipped.append(why(path, exc))
            continue
        if stat.S_ISREG(st.st_mode):
            found.files.append(FileInfo(path, st.st_size, st.st_mtime))
    found.skipped = skipped[:MAX_SKIPPED_SHOWN]
    if len(skipped) > MAX_SKIPPED_SHOWN:
        found.skipped.append(f"and {len(skipped) - MAX_SKIPPED_SHOWN} more unreadable matches")
    return found


def checksum_path(template: str, newest: str) -> str:
    """`{file}` stands for the newest file, e.g. "{file}.sha256" next to each backup."""
    return os.path.expanduser(template.replace("{file}", newest))


def expected_digest(sums_text: str, sums_path: str, target: str) -> str | None:
    base = os.path.dirname(sums_path)
    for line in sums_text.splitlines():
        gnu, bsd = _GNU_SUM.match(line), _BSD_SUM.match(line)
        if gnu:
            digest, name = gnu.group(1), gnu.group(2)
        elif bsd:
            name, digest = bsd.group(1), bsd.group(2)
        else:
            continue
        candidate = os.path.normpath(os.path.join(base, name))
        if candidate == os.path.normpath(target) or name == target:
            return digest.lower()
    return None


def _read_sums(sums_path: str) -> str:
    with open(sums_path, "rb") as f:
        return f.read(SUMS_CAP).decode("utf-8", "replace")


def _sha256(path: str, stop: threading.Event) -> str | None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if stop.is_set():
                return None
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(newest: FileInfo, sums_path: str, stop: threading.Event) -> Verdict:
    try:
        sums = _read_sums(sums_path)
    except FileNotFoundError:
        return Verdict(False, f"checksum file {sums_path} does not exist")
    except OSError as exc:
        return Verdict(False, f"cannot read checksum file: {why(sums_path, exc)}", Status.UNKNOWN)
    expected = expected_digest(sums, sums_path, newest.path)
    if expected is None:
        return Verdict(False, f"{sums_path} has no sha256 for {newest.path}")
    try:
        got = _sha256(newest.path, stop)
        after = os.stat(newest.path)
    except OSError as exc:
        return Verdict(False, f"cannot read {newest.path}: {why(newest.path, exc)}", Status.UNKNOWN)
    if got is None:
        return Verdict(False, "verification stopped", Status.WARNING)
    if (after.st_size, after.st_mtime) != (newest.size, newest.mtime):
        return Verdict(
            False,
            f"{newest.path} changed while being verified (still being written?); "
            "verification retried next run",
            Status.WARNING,
        )
    if got != expected:
        return Verdict(
            False, f"sha256 mismatch for {newest.path}: expected {expected[:16]}…, got {got[:16]}…"
        )
    return Verdict(True, f"sha256 of {os.path.basename(newest.path)} matches")
