"""`vaktpost check`: exit code is the worst status; the JSON shape of DESIGN.md."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, VAKTPOST, free_port, require_binary

DUMMY = "/usr/lib/nagios/plugins/check_dummy"


def write(tmp_path: Path, checks: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"agent: {{state_dir: {tmp_path}/state}}\nchecks:\n{checks}")
    return path


def check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VAKTPOST, "check", "-c", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def dummy(name: str, code: int) -> str:
    return f"  - {{name: {name}, type: command, argv: [{DUMMY}, '{code}', '{name} says']}}\n"


@pytest.mark.parametrize(
    ("codes", "exit_code", "worst"),
    [
        ([0, 0], 0, "ok"),
        ([0, 1], 1, "warning"),
        ([1, 2, 0], 2, "critical"),
        ([2, 3], 2, "critical"),  # critical is worse than unknown
        ([1, 3], 3, "unknown"),
    ],
)
def test_exit_code_is_the_worst_status(
    tmp_path: Path, codes: list[int], exit_code: int, worst: str
) -> None:
    require_binary(DUMMY)
    config = write(tmp_path, "".join(dummy(f"c{i}", c) for i, c in enumerate(codes)))
    proc = check(config, "--format", "json")
    assert proc.returncode == exit_code, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["worst"] == worst
    assert [r["name"] for r in doc["results"]] == [f"c{i}" for i in range(len(codes))]


def test_json_shape_and_unreachable_exits_3(tmp_path: Path) -> None:
    port = free_port()
    config = write(
        tmp_path,
        f"  - {{name: switch, type: tcp, host: 127.0.0.1, port: {port}}}\n"
        f"  - {{name: app, type: tcp, host: 127.0.0.1, port: {port}, depends_on: [switch]}}\n",
    )
    proc = check(config, "app", "--format", "json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["worst"] == "unreachable"
    (result,) = doc["results"]
    assert set(result) == {"name", "type", "status", "message", "duration_seconds", "facts"}
    assert result["name"] == "app" and result["type"] == "tcp"
    assert result["status"] == "unreachable"
    assert result["message"].startswith("unreachable: depends on switch which is critical")
    assert isinstance(result["duration_seconds"], float)


def test_table_output_and_unknown_name(tmp_path: Path) -> None:
    config = write(tmp_path, "  - {name: mem, type: memory}\n")
    proc = check(config)
    assert proc.returncode == 0
    header, row = proc.stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "STATUS", "TIME", "MESSAGE"]
    assert row.split()[:3] == ["mem", "memory", "ok"]
    missing = check(config, "nope")
    assert missing.returncode == 3
    assert missing.stderr.strip() == "unknown check: nope"
