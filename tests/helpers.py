"""The one copy of each test helper: free ports, "skip locally, fail in CI",
polling with a deadline, and the agent as a subprocess.

Import from here. tests/conftest.py and tests/alerting_fixtures.py re-export the
older names (`wait_for`, `async_wait_for`, `daemon`, ...) so that files written
against them keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar, overload

import pytest

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
# .ci/run exports CI=true: there a missing server is a failure, not a skip.
CI = os.environ.get("CI", "").lower() == "true"
VAKTPOST = [sys.executable, "-m", "agent.cli"]


def vaktpost_cmd(*args: str) -> list[str]:
    return [*VAKTPOST, *args]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for configs that need a number up front)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def skip_or_fail(reason: str) -> NoReturn:
    """A missing prerequisite: a skip on a developer machine, a failure under CI=true."""
    if CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def require(condition: bool, what: str) -> None:
    if not condition:
        skip_or_fail(f"{what} not available")


def require_binary(path_or_name: str) -> str:
    """The binary's path, or skip_or_fail when it is not installed."""
    found = shutil.which(path_or_name) or (
        path_or_name if os.access(path_or_name, os.X_OK) else None
    )
    if found:
        return found
    skip_or_fail(f"{path_or_name} is not installed (see .ci/run)")


def _timed_out(timeout: float, what: str, last_error: BaseException | None) -> AssertionError:
    detail = f" (last error: {last_error!r})" if last_error is not None else ""
    return AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    what: str = "condition",
    every: float = 0.02,
) -> T:
    """Poll until predicate returns something truthy, and return it.

    An exception from the predicate (connection refused while a server starts)
    counts as "not yet"; the last one is named in the failure at the deadline.
    An AssertionError is a verdict (say, the server exited) and fails at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except AssertionError:
            raise
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last_error)
        time.sleep(every)


@overload
async def async_wait_until(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float = ...,  # noqa: ASYNC109
    what: str = ...,
    every: float = ...,
) -> T: ...


@overload
async def async_wait_until(
    predicate: Callable[[], T | None],
    timeout: float = ...,  # noqa: ASYNC109
    what: str = ...,
    every: float = ...,
) -> T: ...


async def async_wait_until(
    predicate: Callable[[], Any],
    # The deadline is the point of this helper, and `what` names it in the failure.
    timeout: float = 10.0,  # noqa: ASYNC109
    what: str = "condition",
    every: float = 0.02,
) -> Any:
    """wait_until inside an event loop: the loop keeps running between polls.

    The predicate may be a plain function or return an awaitable.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if isinstance(value, Awaitable):
                value = await value
        except AssertionError:
            raise
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last_error)
        await asyncio.sleep(every)


def http_request(
    url: str, method: str = "GET", body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """(status, body) of one request; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, body, method=method)
    if method != "GET":
        req.add_header("Content-Type", "application/json")  # writes must declare JSON
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


class AgentProcess:
    """`vaktpost run -c CONFIG` as a subprocess; stdout and stderr go to `log`.

    Stop it with stop() or by leaving the `with` block: SIGTERM, and SIGKILL
    after `grace` seconds.
    """

    def __init__(
        self,
        config: Path,
        log: Path | None = None,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.log = log or config.with_suffix(".log")
        self.port = port
        command = list(argv) if argv is not None else vaktpost_cmd("run", "-c", str(config))
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                [*command, *args],
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    @property
    def base(self) -> str:
        assert self.port is not None, "AgentProcess was started without a port"
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        return http_request(self.base + path, method, body)

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (stderr is not a TTY, so the agent logs JSON)."""
        records = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def wait_ready(self, path: str = "/healthz", timeout: float = 15.0) -> None:
        """Until `path` answers 200; an agent that exits fails at once with its log."""

        def up() -> bool:
            assert self.proc.poll() is None, f"the agent exited:\n{self.log_text()}"
            return self.get(path)[0] == 200

        wait_until(up, timeout, f"the agent to answer {path}")

    def stop(self, grace: float = 8.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def daemon(
    cfg: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`vaktpost run --log-level debug` for a `with` block; yields the Popen."""
    with AgentProcess(cfg, log, args=("--log-level", "debug"), env=env) as agent:
        yield agent.proc
