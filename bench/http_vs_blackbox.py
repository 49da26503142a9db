"""Benchmark (issue 3): vaktpost's http check against blackbox_exporter's /probe.

    .venv/bin/python bench/http_vs_blackbox.py [--duration 60] [--checks 1000] [--interval 5]

Same local target (an aiohttp server in a process of its own), same probe rate
(checks / interval: 200 probes/s by default), a fresh connection per probe on
both sides, measured one after the other in one run:

- vaktpost: `vaktpost run -c generated.yaml` with N http checks; CPU-seconds of
  the whole agent process (scheduler, runner, result book, metrics) over the
  window, probes counted from `vaktpost_check_runs_total` on /metrics.
- blackbox_exporter: the exporter serving `/probe?module=http_2xx`, driven at
  the same rate by a paced client in another process (its CPU is not counted,
  as Prometheus's scrapes would not be either).

Prints CPU ms per probe (and per 1,000 probes), peak RSS (VmHWM) and the ratio.
Target: vaktpost <= 0.5 x blackbox_exporter's CPU per probe. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

VAKTPOST = Path(sys.executable).with_name("vaktpost")
WARMUP = 7.0  # every check has run at least once (interval 5 s) before measuring


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


# -- child roles ------------------------------------------------------------------
def serve_target(port: int) -> None:
    from aiohttp import web

    async def ok(_req: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


async def paced_client(url: str, rate: float, duration: float) -> None:
    """Calls blackbox's /probe `rate` times a second; prints how many completed."""
    import aiohttp

    done = failed = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal done, failed
        try:
            async with session.get(url) as resp:
                body = await resp.text()
                done += 1
                failed += "probe_success 1" not in body
        except aiohttp.ClientError:
            failed += 1

    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        start, n = time.monotonic(), 0
        while time.monotonic() - start < duration:
            n += 1
            task = asyncio.create_task(one(session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(start + n / rate - time.monotonic(), 0))
        await asyncio.gather(*tasks)
    print(done, failed, flush=True)


# -- measuring ----------------------------------------------------------------------
@dataclass
class Figures:
    name: str
    probes: int
    cpu_seconds: float
    peak_rss_mb: float
    failed: int = 0

    @property
    def ms_per_probe(self) -> float:
        return 1000 * self.cpu_seconds / max(self.probes, 1)


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def runs_total(port: int) -> tuple[int, int]:
    """(all probes, failed probes) from the agent's check_runs_total."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = failed = 0
    for line in text.splitlines():
        if line.startswith("vaktpost_check_runs_total{"):
            value = int(float(line.rsplit(" ", 1)[1]))
            total += value
            failed += value if 'status="ok"' not in line else 0
    return total, failed


def agent_config(directory: Path, target: str, checks: int, interval: float, port: int) -> Path:
    lines = [
        "agent:",
        f"  listen: 127.0.0.1:{port}",
        f"  state_dir: {directory / 'state'}",
        "  max_concurrency: 1000",
        "channels:",
        "  log: {type: log, default: true}",
        "checks:",
    ]
    lines += [
        f"  - {{name: web{i:05d}, type: http, url: '{target}', interval: {interval}s, timeout: 2s}}"
        for i in range(checks)
    ]
    path = directory / "generated.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure_vaktpost(target: str, checks: int, interval: float, duration: float) -> Figures:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = agent_config(Path(tmp), target, checks, interval, port)
        agent = subprocess.Popen(
            [str(VAKTPOST), "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            time.sleep(WARMUP)
            proc = psutil.Process(agent.pid)
            probes0, failed0 = runs_total(port)
            cpu0 = cpu(proc)
            time.sleep(duration)
            cpu1 = cpu(proc)
            probes1, failed1 = runs_total(port)
            rss = peak_rss_mb(agent.pid)
        finally:
            agent.terminate()
            agent.wait(10)
    return Figures("vaktpost", probes1 - probes0, cpu1 - cpu0, rss, failed1 - failed0)


def measure_blackbox(target: str, rate: float, duration: float) -> Figures:
    binary = shutil.which("prometheus-blackbox-exporter") or "blackbox_exporter"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bb.yml"
        config.write_text(
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n"
            "    http: {preferred_ip_protocol: ip4}\n"
        )
        bb = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/-/healthy")
            url = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={target}"
            proc = psutil.Process(bb.pid)
            # Warm up like the agent, then measure exactly the paced window.
            _drive(url, rate, 3.0)
            cpu0 = cpu(proc)
            done, failed = _drive(url, rate, duration)
            cpu1 = cpu(proc)
            rss = peak_rss_mb(bb.pid)
        finally:
            bb.kill()
            bb.wait(10)
    return Figures("blackbox_exporter", done, cpu1 - cpu0, rss, failed)


def _drive(url: str, rate: float, duration: float) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", url, str(rate), str(duration)],
        capture_output=True,
        text=True,
        check=True,
    )
    done, failed = out.stdout.split()
    return int(done), int(failed)


def report(ours: Figures, theirs: Figures, rate: float, duration: float) -> None:
    print(f"\n{rate:.0f} probes/s, fresh connection per probe, {duration:.0f} s window")
    print(f"{'':20} {'probes':>8} {'failed':>7} {'CPU s':>8} {'ms/probe':>9} {'peak RSS MB':>12}")
    for f in (ours, theirs):
        print(
            f"{f.name:20} {f.probes:8d} {f.failed:7d} {f.cpu_seconds:8.2f} "
            f"{f.ms_per_probe:9.3f} {f.peak_rss_mb:12.1f}"
        )
    ratio = ours.ms_per_probe / theirs.ms_per_probe
    print(
        f"\nCPU per 1,000 probes: vaktpost {ours.ms_per_probe:.2f} s, "
        f"blackbox_exporter {theirs.ms_per_probe:.2f} s"
    )
    print(
        f"ratio vaktpost / blackbox_exporter = {ratio:.2f} (target <= 0.50: "
        f"{'met' if ratio <= 0.5 else 'NOT met'})"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_target(int(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(paced_client(sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per side")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    rate = args.checks / args.interval
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        target = f"http://127.0.0.1:{port}/"
        wait_http(target)
        ours = measure_vaktpost(target, args.checks, args.interval, args.duration)
        theirs = measure_blackbox(target, rate, args.duration)
    finally:
        server.terminate()
        server.wait(10)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    report(ours, theirs, rate, args.duration)


if __name__ == "__main__":
    main()
