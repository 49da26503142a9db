"""Footprint (issue 10): every figure beside its target and references measured in the same run.

    .venv/bin/python bench/footprint.py                    # about 6 minutes
    .venv/bin/python bench/footprint.py --settle 60 --skip-10k   # a quick look

Prints one table. The rows:

- `vaktpost --help` and `vaktpost validate` on the example (wall, median of
  --runs, min-max beside it), next to `python -c pass` and to an interpreter
  that only imports what the agent builds on (pydantic with one model built,
  aiohttp.web, prometheus_client), timed in the same loop, turn by turn;
- the daemon on its embedded default config (`vaktpost run`, no -c; when
  127.0.0.1:9730 is taken, the same file on another port) after --settle
  seconds: RSS, next to a bare interpreter, the same imports, every third-party
  module the daemon imports, and blackbox_exporter idle on Debian's config (if
  installed), all read while the daemon settles;
- 10,000 tcp checks (bench/scheduler_10k.py, run while the daemon above
  settles; --skip-10k leaves it out): scheduler lag p99, CPU, RSS peak and
  /metrics scrape p50, next to APScheduler alone with 10,000 trivial jobs.

Everything listens on 127.0.0.1 only; state goes to a temporary directory.
The default config is measured as shipped: its uplink check connects to three
public DNS resolvers over TCP (offline it reports them down, at the same RSS).
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scheduler_10k  # noqa: E402  (a sibling script, not a package)

VAKTPOST = Path(sys.executable).with_name("vaktpost")
PYTHON = sys.executable
EXAMPLE = ROOT / "config" / "example-municipality.yaml"
DEFAULT_LISTEN = "127.0.0.1:9730"
BLACKBOX_CONFIG = "/etc/prometheus/blackbox.yml"  # Debian's package default
MODEL = "class M(pydantic.BaseModel):\n    a: int\nM(a=1)"
# What the card names: the foundations every vaktpost process builds on.
IMPORTS = f"import pydantic, aiohttp.web, prometheus_client\n{MODEL}"
# Every third-party package the daemon imports on the default config (its
# sys.modules, less the project and the standard library): the floor of any
# agent built on them.
THIRD_PARTY = (
    "import pydantic, aiohttp.web, prometheus_client, apscheduler.schedulers.asyncio,"
    f" yaml, psutil, cronsim, markupsafe, sqlite3\n{MODEL}"
)
TARGETS = {"help": 0.15, "validate": 0.4, "rss": 45.0}


def port_free(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        try:
            sock.bind((host, int(port)))
        except OSError:
            return False
    return True


def walls(
    commands: dict[str, list[str]], runs: int, envs: dict[str, dict[str, str]]
) -> dict[str, list[float]]:
    """Each command `runs` times, turn by turn, so a noisy moment hits all of them."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs + 1):  # the first round fills caches (page, bytecode): dropped
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=envs.get(name),
                check=False,
            )
            times[name].append(time.perf_counter() - start)
    return {name: values[1:] for name, values in times.items()}


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def status_kib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1])
    return float("nan")


def import_rss(code: str) -> float:
    """RSS (MiB) of an interpreter that ran `code` and nothing else (the second run:
    the first fills the bytecode cache, and compiling leaves its own RSS behind)."""
    cmd = [PYTHON, "-c", f"{code}\nprint(open('/proc/self/status').read())"]
    subprocess.run(cmd, capture_output=True, check=True)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("VmRSS:"))
    return float(line.split()[1]) / 1024


def warm_daemon(work: Path) -> None:
    """Start the daemon once until it answers, so the measured one runs from bytecode."""
    port = scheduler_10k.free_port()
    config = default_on(work / "warm.yaml", port)
    env = {**os.environ, "XDG_STATE_HOME": str(work / "warm-state")}
    proc = subprocess.Popen(
        [str(VAKTPOST), "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        scheduler_10k.wait_until(
            lambda: scheduler_10k.scrape(f"http://127.0.0.1:{port}/healthz")[0] >= 0,
            60,
            "the warm-up daemon",
        )
    finally:
        proc.terminate()
        proc.wait(10)


def default_on(path: Path, port: int) -> Path:
    """The embedded default config, listening on `port` instead of 9730."""
    text = (ROOT / "agent" / "default.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace(DEFAULT_LISTEN, f"127.0.0.1:{port}"), encoding="utf-8")
    return path


class Settling:
    """A long-running process whose RSS is read once it has run `settle` seconds.

    A thread of its own reads it, so the figure is at that age whatever else this
    script is doing (the 10,000-check run takes longer).
    """

    def __init__(self, cmd: list[str], settle: float, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.read: tuple[float, float] | None = None  # (RSS, peak RSS) in MiB
        self._thread = threading.Thread(target=self._read_at, args=(settle,), daemon=True)
        self._thread.start()

    def _read_at(self, settle: float) -> None:
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return
            time.sleep(0.5)  # a benchmark's own pacing: it reads after a fixed time
        pid = self.proc.pid
        self.read = status_kib(pid, "VmRSS") / 1024, status_kib(pid, "VmHWM") / 1024

    def result(self) -> tuple[float, float]:
        self._thread.join()
        if self.read is None:
            raise SystemExit(f"{self.cmd[0]} exited with {self.proc.returncode}")
        return self.read

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ten_thousand(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str, str]]:
    bench = argparse.Namespace(
        checks=10_000,
        duration=args.duration_10k,
        warmup=60.0,
        scrape_every=15.0,
        reference_duration=90.0,
    )
    scheduler_10k.raise_nofile()
    a = scheduler_10k.run_agent(bench, work)
    ref = scheduler_10k.run_reference(bench)
    ms = 1000.0
    t = scheduler_10k.TARGETS
    head = "10,000 tcp checks"
    return [
        (
            f"{head}: scheduler lag p99",
            f"{a['lag_p99'] * ms:.1f} ms (worst 15 s window {a['window_p99_max'] * ms:.1f})",
            f"< {t['lag_p99_ms']:.0f} ms",
            f"APScheduler alone {ref['lag_p99_buckets'] * ms:.1f} ms (same buckets)",
        ),
        (
            f"{head}: CPU, one core",
            f"{a['cpu_percent']:.1f} %",
            f"< {t['cpu_percent']:.0f} %",
            f"APScheduler alone {ref['cpu_percent']:.1f} %",
        ),
        (
            f"{head}: RSS peak (end)",
            f"{a['rss_peak_mb']:.1f} MiB ({a['rss_end_mb']:.1f})",
            f"< {t['rss_mb']:.0f} MiB",
            f"APScheduler alone {ref['rss_peak_mb']:.1f} MiB",
        ),
        (
            f"{head}: /metrics scrape p50",
            f"{a['scrape_p50'] * ms:.0f} ms ({a['metrics_bytes'] / 2**20:.1f} MiB body)",
            f"< {t['scrape_p50_ms']:.0f} ms",
            "",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each CLI command")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds before RSS is read")
    parser.add_argument("--duration-10k", type=float, default=180.0, help="seconds measured")
    parser.add_argument("--skip-10k", action="store_true")
    args = parser.parse_args()

    # An installed agent runs from compiled bytecode (pip writes it at install); an
    # editable checkout under PYTHONDONTWRITEBYTECODE=1 compiles every module of
    # ours at each start. Every process here gets a bytecode cache of its own;
    # the row "no bytecode cache" shows the difference.
    uncached = dict(os.environ)
    cache = tempfile.mkdtemp(prefix="vaktpost-footprint-pyc-")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = cache
    uncached.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    validate = [str(VAKTPOST), "validate", "-c", str(EXAMPLE)]
    rows: list[tuple[str, str, str, str]] = []
    t = walls(
        {
            "bare": [PYTHON, "-c", "pass"],
            "imports": [PYTHON, "-c", IMPORTS],
            "help": [str(VAKTPOST), "--help"],
            "validate": validate,
            "validate_uncached": validate,
        },
        args.runs,
        {"validate_uncached": uncached},
    )
    rows.append(
        (
            "vaktpost --help (wall)",
            median_range(t["help"]),
            f"< {TARGETS['help']} s",
            f"python -c pass {median_range(t['bare'])}",
        )
    )
    rows.append(
        (
            "vaktpost validate, example (wall)",
            median_range(t["validate"]),
            f"< {TARGETS['validate']} s",
            f"the card's imports {median_range(t['imports'])}",
        )
    )
    rows.append(
        (
            "the same, no bytecode cache of ours",
            median_range(t["validate_uncached"]),
            "",
            "source compiled at every start",
        )
    )

    with tempfile.TemporaryDirectory(prefix="vaktpost-footprint-") as tmp:
        env = {**os.environ, "XDG_STATE_HOME": tmp}
        warm_daemon(Path(tmp))
        if port_free(DEFAULT_LISTEN):
            how = "vaktpost run"
            cmd = [str(VAKTPOST), "run"]
        else:  # someone else has the default port: the same file on another
            how = "the default file on another port (9730 was taken)"
            config = default_on(Path(tmp) / "default.yaml", scheduler_10k.free_port())
            cmd = [str(VAKTPOST), "run", "-c", str(config)]
        daemon = Settling(cmd, args.settle, env)
        blackbox_bin = shutil.which("prometheus-blackbox-exporter")
        blackbox = None
        if blackbox_bin:
            blackbox = Settling(
                [
                    blackbox_bin,
                    f"--web.listen-address=127.0.0.1:{scheduler_10k.free_port()}",
                    f"--config.file={BLACKBOX_CONFIG}",
                ],
                args.settle,
            )
        try:
            ten = [] if args.skip_10k else ten_thousand(args, Path(tmp))
            rss, peak = daemon.result()
            bb = blackbox.result()[0] if blackbox else None
        finally:
            daemon.stop()
            if blackbox:
                blackbox.stop()
            shutil.rmtree(cache, ignore_errors=True)
    refs = [
        f"python -c pass {import_rss('pass'):.1f} MiB",
        f"the card's imports {import_rss(IMPORTS):.1f} MiB",
        f"every third-party package the daemon imports {import_rss(THIRD_PARTY):.1f} MiB",
    ]
    if bb is not None:
        refs.append(f"blackbox_exporter idle {bb:.1f} MiB")
    rows.append(
        (
            f"daemon, default config, RSS after {args.settle:.0f} s (peak)",
            f"{rss:.1f} MiB ({peak:.1f})",
            f"< {TARGETS['rss']:.0f} MiB",
            "; ".join(refs),
        )
    )
    rows.extend(ten)

    header = ("figure", "measured", "target", "reference (same run)")
    print(f"daemon measured as: {how}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
