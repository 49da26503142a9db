"""Running a bench/ script the way a person would, for the tests of tests/bench/."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def run_bench(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python bench/SCRIPT ARGS...` from the repository's root; fails on a non-zero exit."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run
