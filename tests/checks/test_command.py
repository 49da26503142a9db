"""command check with real monitoring-plugins and misbehaving plugins."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import psutil
import pytest

from agent.results import ResultBook
from agent.runner import Runner
from checks.base import CheckContext, CheckResult, Status
from checks.command import CommandCheck, CommandConfig, parse_output
from tests.helpers import free_port, require_binary, wait_until

PLUGINS = "/usr/lib/nagios/plugins"


async def run(argv: list[str], check_timeout: str = "5s") -> CheckResult:
    config = CommandConfig.model_validate(
        {"name": "p", "type": "command", "argv": argv, "timeout": check_timeout}
    )
    return await Runner(ResultBook(), 4).run(CommandCheck(config, CheckContext(Path("/tmp"), "t")))


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, Status.OK), (1, Status.WARNING), (2, Status.CRITICAL), (3, Status.UNKNOWN)],
)
async def test_check_dummy_exit_codes(code: int, status: Status) -> None:
    dummy = require_binary(f"{PLUGINS}/check_dummy")
    result = await run([dummy, str(code), "treserva answers"])
    assert result.status is status
    assert result.message.endswith(": treserva answers")


async def test_check_tcp_perfdata_becomes_facts() -> None:
    check_tcp = require_binary(f"{PLUGINS}/check_tcp")
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = await run([check_tcp, "-H", "127.0.0.1", "-p", str(port)])
    assert result.status is Status.OK, result.message
    assert result.message.startswith("TCP OK")
    assert 0 <= result.facts["perf_time"] < 5  # check_tcp reports time=0.000123s
    closed = await run([check_tcp, "-H", "127.0.0.1", "-p", str(free_port())])
    assert closed.status is Status.CRITICAL
    assert "Connection refused" in closed.message


def write_script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


async def test_hanging_plugin_is_killed_with_its_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    plugin = write_script(
        tmp_path / "hang",
        f"sleep 60 &\necho $! > {pids}\necho $$ >> {pids}\nwait\n",
    )
    start = time.perf_counter()
    result = await run([plugin], check_timeout="400ms")
    took = time.perf_counter() - start
    assert result.status is Status.CRITICAL
    assert result.message == "timed out after 400ms"
    assert took < 0.4 * 1.1 + 0.1
    child, parent = (int(p) for p in pids.read_text().split())

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE and pid != parent
        except psutil.NoSuchProcess:
            return True

    # The plugin itself is our child: killed and reaped before the result came back.
    assert not psutil.pid_exists(parent)
    # The grandchild (sleep) was killed with the group; init reaps it.
    wait_until(lambda: gone(child), timeout=5, what="the plugin's child to die")
    assert all(
        c.status() != psutil.STATUS_ZOMBIE for c in psutil.Process().children(recursive=True)
    )


async def test_huge_output_is_capped(tmp_path: Path) -> None:
    plugin = write_script(
        tmp_path / "chatty",
        "echo 'OK - chatty|size=10MB'\nhead -c 10000000 /dev/zero | tr '\\0' x\n",
    )
    before = psutil.Process().memory_info().rss
    result = await run([plugin])
    assert result.status is Status.OK
    assert result.message == "OK - chatty"
    assert result.facts["output_truncated"] == 1.0
    assert result.facts["perf_size"] == 10e6
    assert psutil.Process().memory_info().rss - before < 20 * 2**20


async def test_missing_plugin_is_unknown_with_reason() -> None:
    result = await run(["/usr/lib/nagios/plugins/check_nothing_here"])
    assert result.status is Status.UNKNOWN
    assert result.message == "plugin not found: /usr/lib/nagios/plugins/check_nothing_here"


async def test_not_executable_plugin_is_unknown(tmp_path: Path) -> None:
    script = tmp_path / "plain"
    script.write_text("echo hi\n")
    result = await run([str(script)])
    assert result.status is Status.UNKNOWN
    assert result.message == f"plugin not executable: {script}"


async def test_unexpected_exit_code_and_no_shell(tmp_path: Path) -> None:
    plugin = write_script(tmp_path / "odd", 'echo "weird; $1"\nexit 7\n')
    result = await run([plugin, "$(touch /tmp/vaktpost-shell-injection)"])
    assert result.status is Status.UNKNOWN
    assert (
        result.message
        == "plugin ended with exit code 7: weird; $(touch /tmp/vaktpost-shell-injection)"
    )
    assert not await asyncio.to_thread(Path("/tmp/vaktpost-shell-injection").exists)


def test_perfdata_parsing() -> None:
    message, facts = parse_output(
        b"DISK OK - free space: / 3326 MB|/=2643MB;5948;5958;0;5968 'in use'=12%;;\n"
        b"long output line\n"
        b"more | time=0.25s;1;2 load1=0.5\n"
        b"rtt=25ms\n"
    )
    assert message == "DISK OK - free space: / 3326 MB"
    assert facts == {
        "perf__": 2643e6,
        "perf_in_use": 12.0,
        "perf_time": 0.25,
        "perf_load1": 0.5,
        "perf_rtt": 0.025,
    }
