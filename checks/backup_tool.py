"""Running backup tools (restic, borg): one at a time per repository, low priority, killable.

Secrets reach the tools through the environment or a file they read themselves,
never through argv, and error texts are scrubbed before they become messages.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from checks.command import kill_group, read_capped
from core.status import Status

OUTPUT_CAP = 16 * 1024 * 1024  # `snapshots --json` of 10,000 snapshots is ~4 MiB
ERROR_CAP = 64 * 1024
# Environment variables whose values must never show up in a message.
SECRET_ENV = ("RESTIC_PASSWORD", "BORG_PASSPHRASE", "AWS_SECRET_ACCESS_KEY", "B2_ACCOUNT_KEY")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@", re.IGNORECASE)

# One lock per (event loop, repository): locks must not cross loops (tests run many).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def repository_lock(repository: str) -> asyncio.Lock:
    """Tools on one repository run one at a time: they would only fight over its lock."""
    loop = asyncio.get_running_loop()
    locks = _LOCKS.setdefault(loop, {})
    key = os.path.realpath(repository) if "://" not in repository else repository
    return locks.setdefault(key, asyncio.Lock())


class ToolError(Exception):
    """The tool could not do its job; `status` says what that means for the check."""

    def __init__(self, status: Status, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        # Transient: not a verdict on the repository (e.g. locked by a running backup).
        self.transient = transient


@dataclass(frozen=True)
class ToolOutput:
    code: int
    stdout: bytes
    stderr: str


def redact(text: str) -> str:
    """Remove passwords in repository URLs and any secret value from the environment."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def low_priority(argv: list[str]) -> list[str]:
    """nice and ionice (best effort, lowest): a check must not slow the server it watches."""
    prefix: list[str] = []
    if shutil.which("ionice"):
        prefix += ["ionice", "-c", "2", "-n", "7"]
    if shutil.which("nice"):
        prefix += ["nice", "-n", "10"]
    return prefix + argv


async def _spawn(
    argv: list[str], env: Mapping[str, str], cwd: str | None
) -> asyncio.subprocess.Process:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise ToolError(Status.UNKNOWN, f"{tool} is not installed (not found in PATH)")
    try:
        return await asyncio.create_subprocess_exec(
            *low_priority(argv),
            stdin=asyncio.subprocess.DEVNULL,  # a password prompt must fail, not hang
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # own process group: a timeout kills helpers too
        )
    except OSError as exc:
        raise ToolError(Status.UNKNOWN, f"cannot start {tool}: {exc.strerror or exc}") from None


async def run_tool(
    argv: list[str], env: Mapping[str, str], cwd: str | None = None, cap: int = OUTPUT_CAP
) -> ToolOutput:
    proc = await _spawn(argv, env, cwd)
    try:
        (out, truncated), (err, _) = await asyncio.gather(
            read_capped(proc.stdout, cap), read_capped(proc.stderr, ERROR_CAP)
        )
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            await kill_group(proc)
    if truncated:
        raise ToolError(Status.UNKNOWN, f"{argv[0]} printed more than {cap} bytes; output cut")
    return ToolOutput(code, out, redact(err.decode("utf-8", "replace")))


async def scan_lines(
    argv: list[str], env: Mapping[str, str], keep_going: Callable[[bytes], bool]
) -> ToolOutput:
    """Feed stdout line by line to `keep_going`; stop the tool as soon as it says False.

    A listing of a snapshot with millions of files is never held in memory.
    """
    proc = await _spawn(argv, env, None)
    stopped = False
    err_task = asyncio.ensure_future(read_capped(proc.stderr, ERROR_CAP))
    try:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # one line over the stream limit: not a listing we understand
                raise ToolError(Status.UNKNOWN, f"{argv[0]} printed an overlong line") from None
            if not line:
                break
            if not keep_going(line):
                stopped = True
                break
        if stopped:
            await kill_group(proc)
        err, _ = await err_task
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            await kill_group(proc)
        if not err_task.done():
            err_task.cancel()
    return ToolOutput(0 if stopped else code, b"", redact(err.decode("utf-8", "replace")))


_NOISE = re.compile(
    r"^(\s|Traceback|File \"|Platform:|Linux:|Borg:|PID:|sys\.argv|SSH_ORIGINAL|\[\d|"
    r"using temporary cache|create exclusive lock|load indexes|check all packs|"
    r"check snapshots|read \d|repository [0-9a-f]+ opened|created new cache|"
    r"restoring <Snapshot|Starting repository check|Starting archive consistency)"
)


def tool_failure(
    tool: str, out: ToolOutput, known: Callable[[ToolOutput], ToolError | None]
) -> ToolError:
    """The tool's own known reason, else its exit code and first error lines."""
    return known(out) or ToolError(
        Status.UNKNOWN, f"{tool} failed (exit {out.code}): {summarize(out.stderr)}"
    )


def summarize(text: str, limit: int = 3) -> str:
    """The first few meaningful lines of a tool's error output, for a one-line message."""
    seen: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or _NOISE.match(line):
            continue
        line = line.removeprefix("Fatal: ").strip()
        if line and not any(line in s or s in line for s in seen):
            seen.append(line)
        if len(seen) >= limit:
            break
    joined = "; ".join(seen)
    return joined if len(joined) <= 400 else joined[:397] + "..."
