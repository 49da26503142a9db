"""Why a state store file cannot be trusted: the checks run before the daemon opens it.

Run on the file as found, before any read-write connection: closing a
read-write connection checkpoints and deletes the WAL, which would destroy the
evidence (and silently drop a damaged WAL's frames). Everything here only reads.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from agent.state.sqlite_schema import MIGRATIONS

Verifier = Callable[[sqlite3.Connection], object]
"""Reads the rows a component will load at start; raises if one does not load."""

_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER = 32
_FRAME_HEADER = 24


class NewerStoreError(Exception):
    """The store was written by a newer vaktpost: never move it aside, refuse to start."""


def damage_of(path: Path, known_version: int, verify: Sequence[Verifier] = ()) -> str | None:
    """The reason the store at `path` is damaged, or None when it is sound (or absent)."""
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        return "it is not a regular file (a directory, FIFO or device is in its place)"
    wal = wal_damage(path.with_name(path.name + "-wal"))
    if wal is not None:
        return wal
    try:
        db = _read_only(path)
        try:
            return _content_damage(db, known_version, verify)
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"sqlite: {exc}"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"a stored row does not load ({type(exc).__name__}: {exc})"


def _content_damage(
    db: sqlite3.Connection, known_version: int, verify: Sequence[Verifier]
) -> str | None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > known_version:
        raise NewerStoreError(
            f"state store schema version {version} is newer than this vaktpost "
            f"({known_version}); refusing to touch it"
        )
    if version == 0:
        # A store is only ever renamed into place after its migrations ran.
        return "it holds no vaktpost schema (an empty or foreign file)"
    problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        return "quick_check: " + "; ".join(str(p) for p in problems)
    missing = schema_gaps(db, version)
    if missing:
        return "schema damaged, missing " + ", ".join(missing)
    if version == known_version:  # an older schema is migrated first; its rows load then
        for check in verify:
            check(db)
    return None


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None)


def expected_schema(migrations: Sequence[str]) -> dict[str, set[str]]:
    """table or index name -> its columns, as the migrations create them."""
    db = sqlite3.connect(":memory:")
    try:
        for script in migrations:
            db.executescript(script)
        return _schema(db)
    finally:
        db.close()


def _schema(db: sqlite3.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for kind, name in db.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')"
        " AND name NOT LIKE 'sqlite_%'"
    ).fetchall():
        pragma = "table_info" if kind == "table" else "index_info"
        out[name] = {
            str(r[2] if kind == "index" else r[1])
            for r in db.execute(f"PRAGMA {pragma}({_quote_ident(name)})")
        }
    return out


_SCHEMA_CACHE: dict[int, dict[str, set[str]]] = {}


def schema_gaps(db: sqlite3.Connection, version: int) -> list[str]:
    """Tables, indexes and columns the migrations up to `version` made that are gone."""
    if version not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[version] = expected_schema(MIGRATIONS[:version])
    actual = _schema(db)
    gaps = []
    for name, columns in sorted(_SCHEMA_CACHE[version].items()):
        if name not in actual:
            gaps.append(name)
        else:
            gaps += [f"{name}.{c}" for c in sorted(columns - actual[name])]
    return gaps


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- the write-ahead log --------------------------------------------------------------------
def wal_damage(wal: Path) -> str | None:
    """A WAL whose committed frames SQLite would silently skip.

    SQLite stops reading a WAL at the first frame whose checksum fails and drops
    the rest without a word. A torn last frame (power loss mid-write) is normal
    and loses nothing committed; frames of the same WAL generation that are
    commits *after* a bad frame, or a bad header in front of frames, are damage.
    """
    try:
        if not wal.is_file():
            return None
        data = wal.read_bytes()
    except OSError as exc:
        return f"the WAL cannot be read ({exc})"
    if len(data) < _WAL_HEADER:
        return None
    magic, _version, page_size, _seq, salt1, salt2, ck1, ck2 = struct.unpack(">8I", data[:32])
    frame = _FRAME_HEADER + page_size
    frames = (len(data) - _WAL_HEADER) // frame if page_size else 0
    if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
        return "the WAL header is damaged" if len(data) >= _WAL_HEADER + 512 else None
    big = magic & 1 == 1
    s = _checksum(data[:24], big, (0, 0))
    if s != (ck1, ck2):
        return "the WAL header is damaged" if frames else None
    for index in range(frames):
        start = _WAL_HEADER + index * frame
        head = struct.unpack(">6I", data[start : start + _FRAME_HEADER])
        if (head[2], head[3]) == (salt1, salt2):
            s = _checksum(data[start : start + 8], big, s)
            s = _checksum(data[start + _FRAME_HEADER : start + frame], big, s)
            if s == (head[4], head[5]):
                continue
        if _commit_after(data, index + 1, frames, frame, (salt1, salt2)):
            return f"the WAL is damaged at frame {index + 1}; committed frames follow it"
        return None
    return None


def _commit_after(data: bytes, first: int, frames: int, frame: int, salts: tuple[int, int]) -> bool:
    for index in range(first, frames):
        start = _WAL_HEADER + index * frame
        _page, commit, salt1, salt2 = struct.unpack(">4I", data[start : start + 16])
        if commit and (salt1, salt2) == salts:
            return True
    return False


def _checksum(chunk: bytes, big: bool, seed: tuple[int, int]) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(chunk) // 4}I", chunk)
    s0, s1 = seed
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


# -- recovery -------------------------------------------------------------------------------
_ID_QUERIES = {
    "incident": (
        "SELECT MAX(id) FROM incidents",
        "SELECT MAX(incident_id) FROM outbox",
        "SELECT MAX(incident_id) FROM incident_events",
        "SELECT CAST(value AS INTEGER) - 1 FROM alert_meta WHERE key='next_incident_id'",
    ),
    "silence": (
        "SELECT MAX(id) FROM silences",
        "SELECT CAST(value AS INTEGER) - 1 FROM alert_meta WHERE key='next_silence_id'",
    ),
}


def salvage_ids(path: Path) -> dict[str, int]:
    """The highest incident and silence ids the damaged file still shows (0: none readable)."""
    out = dict.fromkeys(_ID_QUERIES, 0)
    if not path.is_file():
        return out
    try:
        db = _read_only(path)
    except sqlite3.Error:
        return out
    try:
        for kind, queries in _ID_QUERIES.items():
            for sql in queries:
                try:
                    row = db.execute(sql).fetchone()
                except sqlite3.Error:
                    continue
                if row and isinstance(row[0], int):
                    out[kind] = max(out[kind], row[0])
    finally:
        db.close()
    return out


def move_aside(path: Path, now: float | None = None) -> Path:
    """Rename the store and its -wal/-shm to vaktpost.db.corrupt-<UTC time>[-wal|-shm]."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    path.rename(target)
    return target
