"""Config bombs explain themselves through `validate`, `run` and SIGHUP (issue 9, item 11).

Each case was a MemoryError, an OverflowError, a RecursionError, a traceback at
start or a half-applied reload; now each is one `FILE:LINE: key: message`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, VAKTPOST, free_port, wait_until


def laughs() -> str:
    lines = ["a: &a [" + ",".join(["x"] * 50) + "]"]
    for i in range(8):
        prev = "a" if i == 0 else f"b{i - 1}"
        lines.append(f"b{i}: &b{i} [" + ",".join([f"*{prev}"] * 50) + "]")
    return "\n".join(lines) + "\n"


def _fifo_include(d: Path) -> str:
    os.mkfifo(d / "pipe.yaml")
    return "include: [pipe.yaml]\n"


def check(key: str, value: str) -> str:
    return f"checks:\n  - name: m\n    type: memory\n    {key}: {value}\n"


# (case, file text or a builder given the directory, line, expected `key: message`)
Builder = Callable[[Path], str]
CASES: list[tuple[str, Builder, int, str]] = [
    (
        "include_dev_zero",
        lambda d: "include: [/dev/zero]\n",
        1,
        "include[0]: /dev/zero: cannot read: not a regular file (a device, FIFO or socket)",
    ),
    (
        "include_fifo",
        _fifo_include,
        1,
        "include[0]: {dir}/pipe.yaml: cannot read: not a regular file (a device, FIFO or socket)",
    ),
    (
        "include_huge",
        lambda d: (
            (d / "huge.yaml").write_text("# " + "x" * (5 * 1024 * 1024) + "\n"),
            "checks: []\ninclude: [huge.yaml]\n",
        )[1],
        2,
        "include[0]: {dir}/huge.yaml: file too large: at most 4 MiB",
    ),
    ("duration_40_digits", lambda d: check("interval", "1" * 40 + "s"), 4, "checks[0].interval: "),
    ("int_40_digits", lambda d: check("interval", "1" * 40), 4, "checks[0].interval: "),
    ("int_5000_digits", lambda d: check("timeout", "9" * 5000), 4, "checks[0].timeout: "),
    ("interval_inf", lambda d: check("interval", ".inf"), 4, "checks[0].interval: "),
    ("interval_nan", lambda d: check("interval", ".nan"), 4, "checks[0].interval: "),
    ("interval_1e9_days", lambda d: check("interval", "1000000000d"), 4, "checks[0].interval: "),
    ("interval_8_days", lambda d: check("interval", "8d"), 4, "checks[0].interval: "),
    ("timeout_2_days", lambda d: check("timeout", "2d"), 4, "checks[0].timeout: "),
    ("nesting_500", lambda d: "a: " + "[" * 500 + "]" * 500 + "\n", 1, "a[0]"),
    ("billion_laughs", lambda d: laughs(), 1, "yaml: the document expands to more than"),
]
MESSAGES = {
    "duration_40_digits": "duration too long: at most 3650d",
    "int_40_digits": "number too large",
    "int_5000_digits": "invalid value",
    "interval_inf": "not a finite number",
    "interval_nan": "not a finite number",
    "interval_1e9_days": "duration too long: at most 3650d",
    "interval_8_days": "too long: at most 7d",
    "timeout_2_days": "too long: at most 1d",
    "nesting_500": "nested deeper than 64",
    "billion_laughs": "2000000 values (aliases of aliases?)",
}


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VAKTPOST, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(("case", "build", "line", "expected"), CASES, ids=[c[0] for c in CASES])
def test_validate_explains_each_bomb(
    tmp_path: Path, case: str, build: Builder, line: int, expected: str
) -> None:
    config = tmp_path / "bomb.yaml"
    config.write_text(build(tmp_path))
    proc = run_cli("validate", "-c", str(config))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(item.startswith(f"{config}:") for item in lines), lines
    first = lines[0]
    assert first.startswith(f"{config}:{line}: " + expected.replace("{dir}", str(tmp_path)))
    assert MESSAGES.get(case, "") in first


def test_a_huge_main_file_is_refused_unread(tmp_path: Path) -> None:
    config = tmp_path / "huge.yaml"
    config.write_text("# " + "x" * (5 * 1024 * 1024) + "\n")
    proc = run_cli("validate", "-c", str(config))
    assert (proc.returncode, proc.stderr) == (
        1,
        f"{config}:1: (file): file too large: at most 4 MiB\n",
    )


@pytest.mark.parametrize("interval", [".inf", "1000000000d", "1" * 40])
def test_run_refuses_absurd_intervals_in_one_line(tmp_path: Path, interval: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"agent: {{listen: 127.0.0.1:{free_port()}, state_dir: {tmp_path}/s}}\n"
        + check("interval", interval)
    )
    proc = run_cli("run", "-c", str(config))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{config}:5: checks[0].interval: ")
    assert len(proc.stderr.splitlines()) == 1


class Agent:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.config = tmp / "agent.yaml"
        self.head = f"agent: {{listen: 127.0.0.1:{self.port}, state_dir: {tmp}/state}}\n"
        self.config.write_text(self.head + "checks: [{name: old, type: memory, interval: 1s}]\n")
        self.log = tmp / "agent.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [*VAKTPOST, "run", "-c", str(self.config)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_until(lambda: self.get("/healthz"), timeout=30, what="the agent")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            body: bytes = r.read()
            return body

    def reload_success(self) -> float:
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("vaktpost_config_reload_success "):
                return float(line.split()[1])
        raise AssertionError("no vaktpost_config_reload_success")

    def checks(self) -> set[str]:
        return {c["name"] for c in json.loads(self.get("/api/v1/checks"))["checks"]}

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        (line,) = [x for x in status.splitlines() if x.startswith("VmRSS:")]
        return int(line.split()[1])

    def hup(self, body: str) -> None:
        self.config.write_text(self.head + body)
        self.proc.send_signal(signal.SIGHUP)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = Agent(tmp_path)
    yield a
    a.proc.send_signal(signal.SIGTERM)
    try:
        a.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        a.proc.kill()
        a.proc.wait()


def test_sighup_with_bombs_keeps_the_old_config(agent: Agent, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    bombs = [
        "include: [/dev/zero]\n",
        "include: [pipe.yaml]\n",
        "checks: [{name: new, type: memory, interval: .inf}]\n",
        "checks: [{name: new, type: memory, interval: 1000000000d}]\n",
        "x: " + "[" * 500 + "]" * 500 + "\n",
        laughs(),
    ]
    rss_before = agent.rss_kib()
    for bomb in bombs:
        agent.hup(bomb)
        wait_until(lambda: agent.reload_success() == 0, timeout=20, what="a rejected reload")
        assert agent.proc.poll() is None
        assert agent.checks() == {"old"}
        # Put the gauge back to 1 with a good reload, so the next bomb is seen on its own.
        agent.hup("checks: [{name: old, type: memory, interval: 1s}]\n")
        wait_until(lambda: agent.reload_success() == 1, timeout=20, what="a good reload")
    assert agent.rss_kib() < rss_before + 200 * 1024  # /dev/zero once grew it to 24 GB
    agent.hup("checks: [{name: new, type: memory, interval: 1s}]\n")
    wait_until(lambda: agent.checks() == {"new"}, timeout=20, what="the good reload")
    assert agent.reload_success() == 1
    log = agent.log.read_text()
    assert "Traceback" not in log
    rejected = [json.loads(x) for x in log.splitlines() if "config reload rejected" in x]
    assert len(rejected) == len(bombs)


async def test_a_reload_that_fails_while_applying_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.configload import read_config
    from agent.daemon import Agent as Daemon

    config = tmp_path / "a.yaml"
    head = f"agent: {{listen: 127.0.0.1:{free_port()}, state_dir: {tmp_path}/state}}\n"
    config.write_text(head + "checks: [{name: old, type: memory}]\n")
    agent = Daemon(read_config(str(config)), str(config))
    await agent.startup()
    try:
        told: list[set[str]] = []

        def reload(new: object) -> None:
            told.append({c.name for c in new.checks})  # type: ignore[attr-defined]
            if len(told) == 1:
                raise RuntimeError("component cannot take http://u:S3cr3tPW@127.0.0.1/")

        monkeypatch.setattr(agent.components[-1], "reload", reload)
        config.write_text(head + "checks: [{name: new, type: memory}]\n")
        ok, errors = await agent.reload()
        assert not ok
        assert errors == ["RuntimeError: component cannot take http://***@127.0.0.1/"]
        assert {c.name for c in agent.config.checks} == {"old"}
        assert set(agent.runtime.checks) == {"old"}
        assert told == [{"new"}, {"old"}]  # the failing component was told the old one again
        assert agent.metrics.reload_success._value.get() == 0
    finally:
        await agent.shutdown()
