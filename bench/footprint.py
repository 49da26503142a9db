"""Footprint: CLI start-up and the daemon's memory, beside references measured in the same run.

    .venv/bin/python bench/footprint.py [--runs 7] [--settle 300]

Prints one table: each figure (median of --runs for wall times; RSS after
--settle seconds for the daemons) next to its target and to references taken
on this machine at the same time: a bare interpreter (`python -c pass`), an
interpreter that imports what the agent builds on (pydantic, aiohttp.web,
prometheus_client), and blackbox_exporter idle on its default config. The
10,000-check figures come from bench/scheduler_10k.py (its own table).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAKTPOST = ROOT / ".venv" / "bin" / "vaktpost"
PYTHON = sys.executable
EXAMPLE = ROOT / "config" / "example-municipality.yaml"
BLACKBOX_CONFIG = "/etc/prometheus/blackbox.yml"  # Debian's package default
IMPORTS = "import pydantic, aiohttp.web, prometheus_client"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_kib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return float("nan")


def settled_rss(cmd: list[str], settle: float, env: dict[str, str] | None = None) -> float:
    """RSS (MiB) of a long-running process after `settle` seconds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{cmd[0]} exited with {proc.returncode}")
            time.sleep(0.5)  # a benchmark's own pacing: it measures after a fixed time
        return rss_kib(proc.pid) / 1024
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def import_rss(code: str) -> float:
    out = subprocess.run(
        [PYTHON, "-c", f"{code}\nprint(open('/proc/self/status').read())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("VmRSS:"))
    return float(line.split()[1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--settle", type=float, default=300.0, help="seconds before RSS is read")
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str]] = []
    bare = wall([PYTHON, "-c", "pass"], args.runs)
    imports = wall([PYTHON, "-c", IMPORTS], args.runs)
    helptime = wall([str(VAKTPOST), "--help"], args.runs)
    validate = wall([str(VAKTPOST), "validate", "-c", str(EXAMPLE)], args.runs)
    rows.append(
        ("vaktpost --help (wall)", f"{helptime:.3f} s", "< 0.15 s", f"python -c pass {bare:.3f} s")
    )
    rows.append(
        (
            "vaktpost validate example (wall)",
            f"{validate:.3f} s",
            "< 0.4 s",
            f"imports {imports:.3f} s",
        )
    )

    with tempfile.TemporaryDirectory(prefix="vaktpost-footprint-") as tmp:
        env = {**os.environ, "XDG_STATE_HOME": tmp}
        config = Path(tmp) / "default.yaml"
        port = free_port()
        text = (ROOT / "agent" / "default.yaml").read_text()
        config.write_text(text.replace("127.0.0.1:9730", f"127.0.0.1:{port}"))
        agent = settled_rss([str(VAKTPOST), "run", "-c", str(config)], args.settle, env)
    rows.append(
        (
            f"daemon, default config, after {args.settle:.0f} s (RSS)",
            f"{agent:.1f} MiB",
            "< 45 MiB",
            f"python -c pass {import_rss('pass'):.1f} MiB; imports {import_rss(IMPORTS):.1f} MiB",
        )
    )
    blackbox = shutil.which("prometheus-blackbox-exporter")
    if blackbox:
        bport = free_port()
        bb = settled_rss(
            [
                blackbox,
                f"--web.listen-address=127.0.0.1:{bport}",
                f"--config.file={BLACKBOX_CONFIG}",
            ],
            min(args.settle, 30.0),
        )
        rows.append(("blackbox_exporter idle (RSS)", f"{bb:.1f} MiB", "reference", ""))

    widths = [
        max(len(r[i]) for r in [("figure", "measured", "target", "reference"), *rows])
        for i in range(4)
    ]
    for row in [("figure", "measured", "target", "reference"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
