"""Benchmark (issue 2): an agent with 10,000 tcp checks at 60 s, scraped every 15 s.

    .venv/bin/python bench/scheduler_10k.py [--duration 180] [--checks 10000]

Three processes: a loopback listener that accepts and closes at once, `vaktpost
run` with N tcp checks against it, and this driver, which scrapes /metrics every
15 s (timing each scrape), samples the agent's CPU and RSS with psutil, and
reads scheduler lag from the agent's `vaktpost_scheduler_lag_seconds` histogram
(quantiles interpolated inside buckets like PromQL's histogram_quantile, over the
whole run and per 15 s window). Then, for scale, APScheduler alone runs N
trivial 60 s jobs, spread over the interval the same way, in a process of its
own; its lag is exact (no buckets) and estimated from the same buckets.

Targets (issue 10): lag p99 < 50 ms, CPU < 10 % of one core, RSS peak < 100 MiB,
scrape p50 < 100 ms. bench/footprint.py runs this too, beside its other figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
VAKTPOST = Path(sys.executable).with_name("vaktpost")
LAG_METRIC = "vaktpost_scheduler_lag_seconds_bucket"
TARGETS = {"lag_p99_ms": 50.0, "cpu_percent": 10.0, "rss_mb": 100.0, "scrape_p50_ms": 100.0}
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- the listener process -------------------------------------------------------
class _CloseAtOnce(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def _listen() -> None:
    raise_nofile()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_CloseAtOnce, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


# -- the reference process: APScheduler alone ------------------------------------
async def _reference(count: int, interval: float, duration: float) -> None:
    from datetime import UTC, datetime

    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    from agent.runtime import start_offset

    lags: list[float] = []
    anchors: dict[str, float] = {}

    async def job(name: str) -> None:
        lag = (time.time() - anchors[name]) % interval
        lags.append(lag if lag < interval / 2 else 0.0)

    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = time.time()
    for i in range(count):
        name = f"job-{i:05d}"
        anchor = now - (now % interval) + start_offset(name, interval)
        if anchor <= now:
            anchor += interval
        anchors[name] = anchor
        scheduler.add_job(
            job,
            IntervalTrigger(
                seconds=interval, start_date=datetime.fromtimestamp(anchor, UTC), timezone=UTC
            ),
            args=[name],
            id=name,
        )
    scheduler.start()
    print("ready", flush=True)
    await asyncio.sleep(duration)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.1)  # let jobs started just now finish, not be cancelled
    print(json.dumps(lags), flush=True)


# -- helpers ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(directory: Path, count: int, target_port: int, agent_port: int) -> Path:
    lines = [
        "agent:",
        "  name: bench",
        f"  listen: 127.0.0.1:{agent_port}",
        f"  state_dir: {directory / 'state'}",
        "  defaults: {interval: 60s, timeout: 5s, failures_before_alert: 2}",
        "channels:",
        "  log: {type: log, default: true}",
        "checks:",
    ]
    lines += [
        f"  - {{name: tcp-{i:05d}, type: tcp, host: 127.0.0.1, port: {target_port}}}"
        for i in range(count)
    ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scrape(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read().decode()
    return time.perf_counter() - start, body


def lag_buckets(text: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(LAG_METRIC):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """PromQL histogram_quantile: linear interpolation inside the bucket."""
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def buckets_of(values: list[float]) -> dict[float, float]:
    bounds = [*BUCKETS, float("inf")]
    return {b: float(sum(1 for v in values if v <= b)) for b in bounds}


def exact_quantile(q: float, values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_until(predicate: object, deadline: float, what: str) -> None:
    assert callable(predicate)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def peak_rss_mb(proc: psutil.Process) -> float:
    """VmHWM: the kernel's own peak RSS of the process."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return proc.memory_info().rss / 2**20


# -- the agent run ------------------------------------------------------------------
class Sample:
    """What the driver saw at one scrape."""

    def __init__(self, at: float, cpu: float, took: float, body: str) -> None:
        self.at, self.cpu, self.took = at, cpu, took
        self.buckets = lag_buckets(body)


def delta(later: dict[float, float], earlier: dict[float, float]) -> dict[float, float]:
    return {b: later[b] - earlier.get(b, 0.0) for b in later}


def thread_cpu(proc: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


def run_agent(args: argparse.Namespace, work: Path) -> dict[str, float]:
    listener = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    agent: subprocess.Popen[bytes] | None = None
    try:
        assert listener.stdout is not None
        target_port = int(listener.stdout.readline())
        agent_port = free_port()
        config = write_config(work, args.checks, target_port, agent_port)
        base = f"http://127.0.0.1:{agent_port}"
        log = (work / "agent.log").open("wb")
        started = time.monotonic()
        agent = subprocess.Popen(
            [str(VAKTPOST), "run", "-c", str(config), "--log-level", "warning"], stderr=log
        )

        def ready_or_dead() -> bool:
            if agent is not None and agent.poll() is not None:
                raise SystemExit(f"agent exited with {agent.returncode}; see {log.name}")
            return scrape(base + "/readyz")[0] >= 0

        wait_until(ready_or_dead, 120, "the agent to be ready")
        startup = time.monotonic() - started
        proc = psutil.Process(agent.pid)
        ready = Sample(time.monotonic(), cpu_seconds(proc), 0.0, "")
        rss_sampled = 0.0
        samples: list[Sample] = []
        threads0: dict[int, float] = {}
        measure_from = ready.at + args.warmup
        end = measure_from + args.duration
        next_scrape = ready.at + args.scrape_every
        while True:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited with {agent.returncode}; see {log.name}")
            rss_sampled = max(rss_sampled, proc.memory_info().rss / 2**20)
            if time.monotonic() >= next_scrape:
                took, body = scrape(base + "/metrics")
                samples.append(Sample(next_scrape, cpu_seconds(proc), took, body))
                if not threads0 and next_scrape >= measure_from:
                    threads0 = thread_cpu(proc)
                if next_scrape >= end:
                    break
                next_scrape += args.scrape_every
            time.sleep(min(1.0, max(0.0, next_scrape - time.monotonic())))
        threads1 = thread_cpu(proc)
        last_body = body
        measured = [s for s in samples if s.at >= measure_from]
        first, last = measured[0], measured[-1]
        warm = [s for s in samples if s.at <= measure_from]
        warm_end = warm[-1] if warm else first
        lag = delta(last.buckets, first.buckets)
        windows = list(itertools.pairwise(measured))
        window_p99 = [bucket_quantile(0.99, delta(b.buckets, a.buckets)) for a, b in windows]
        window_cpu = [100 * (b.cpu - a.cpu) / (b.at - a.at) for a, b in windows]
        wall = last.at - first.at
        by_thread = sorted(
            ((100 * (v - threads0.get(tid, 0.0)) / wall, tid) for tid, v in threads1.items()),
            reverse=True,
        )
        lines = last_body.splitlines()
        runs = [ln for ln in lines if ln.startswith("vaktpost_check_runs_total{")]
        return {
            "startup_s": startup,
            "runs": sum(float(ln.rsplit(" ", 1)[1]) for ln in runs),
            "ok_runs": sum(float(ln.rsplit(" ", 1)[1]) for ln in runs if 'status="ok"' in ln),
            "observations": lag.get(float("inf"), 0.0),
            "lag_p50": bucket_quantile(0.5, lag),
            "lag_p99": bucket_quantile(0.99, lag),
            "lag_p99_whole_run": bucket_quantile(0.99, last.buckets),
            "lag_share_le_50ms": lag.get(0.05, 0.0) / max(1.0, lag.get(float("inf"), 0.0)),
            "window_p99_max": max(window_p99, default=float("nan")),
            "window_p99_median": statistics.median(window_p99) if window_p99 else float("nan"),
            "cpu_percent": 100 * (last.cpu - first.cpu) / wall,
            "cpu_window_max": max(window_cpu, default=float("nan")),
            "cpu_warmup": 100 * (warm_end.cpu - ready.cpu) / max(1e-9, warm_end.at - ready.at),
            "cpu_main_thread": by_thread[0][0] if by_thread else float("nan"),
            "cpu_other_threads": sum(c for c, _ in by_thread[1:]),
            "rss_peak_mb": max(rss_sampled, peak_rss_mb(proc)),
            "rss_end_mb": proc.memory_info().rss / 2**20,
            "scrape_p50": statistics.median(s.took for s in measured),
            "scrape_max": max(s.took for s in measured),
            "scrapes": len(measured),
            "samples": sum(1 for ln in lines if ln and not ln.startswith("#")),
            "metrics_bytes": len(last_body),
        }
    finally:
        for p in (agent, listener):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def run_reference(args: argparse.Namespace) -> dict[str, float]:
    ref = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--reference-job",
            str(args.checks),
            str(args.reference_duration),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert ref.stdout is not None
        if ref.stdout.readline().strip() != "ready":
            raise SystemExit("reference did not start")
        proc = psutil.Process(ref.pid)
        t0, cpu0 = time.monotonic(), cpu_seconds(proc)
        time.sleep(args.reference_duration - 1)  # the reference process ends itself
        t1, cpu1 = time.monotonic(), cpu_seconds(proc)
        rss = peak_rss_mb(proc)
        lags = json.loads(ref.stdout.readline())
    finally:
        ref.wait(timeout=30)
    return {
        "observations": len(lags),
        "lag_p50_exact": exact_quantile(0.5, lags),
        "lag_p99_exact": exact_quantile(0.99, lags),
        "lag_p99_buckets": bucket_quantile(0.99, buckets_of(lags)),
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "rss_peak_mb": rss,
    }


def verdict(value: float, target: float) -> str:
    return "ok" if value < target else "MISSED"


def report(args: argparse.Namespace, a: dict[str, float], ref: dict[str, float]) -> None:
    ms = 1000.0
    print(
        f"\n== vaktpost: {args.checks} tcp checks every 60s; {args.warmup:.0f}s warm-up,"
        f" then {args.duration:.0f}s measured =="
    )
    print(f"startup to /readyz           {a['startup_s']:.1f} s")
    print(f"probes run / ok (whole run)  {a['runs']:.0f} / {a['ok_runs']:.0f}")
    print(f"lag observations (measured)  {a['observations']:.0f}")
    print(
        f"scheduler lag p50 / p99      {a['lag_p50'] * ms:.2f} / {a['lag_p99'] * ms:.2f} ms"
        f"   target p99 < 50 ms: {verdict(a['lag_p99'] * ms, TARGETS['lag_p99_ms'])}"
    )
    print(f"  share of starts <= 50 ms   {a['lag_share_le_50ms'] * 100:.2f} %")
    print(
        f"  per-{args.scrape_every:.0f}s-window p99         median"
        f" {a['window_p99_median'] * ms:.2f} ms, worst {a['window_p99_max'] * ms:.2f} ms;"
        f" whole run incl. warm-up {a['lag_p99_whole_run'] * ms:.2f} ms"
    )
    print(
        f"agent CPU (one core)         {a['cpu_percent']:.1f} %"
        f"   target < 10 %: {verdict(a['cpu_percent'], TARGETS['cpu_percent'])}"
    )
    print(
        f"  event loop thread / others {a['cpu_main_thread']:.1f} %"
        f" / {a['cpu_other_threads']:.1f} %;"
        f" worst window {a['cpu_window_max']:.1f} %;"
        f" warm-up (first results) {a['cpu_warmup']:.1f} %"
    )
    print(
        f"agent RSS peak / end         {a['rss_peak_mb']:.1f} / {a['rss_end_mb']:.1f} MiB"
        f"   target < {TARGETS['rss_mb']:.0f} MiB: {verdict(a['rss_peak_mb'], TARGETS['rss_mb'])}"
    )
    print(
        f"/metrics scrape p50 / max    {a['scrape_p50'] * ms:.1f} / {a['scrape_max'] * ms:.1f} ms"
        f" over {a['scrapes']:.0f} scrapes ({a['samples']:.0f} samples,"
        f" {a['metrics_bytes'] / 2**20:.1f} MiB)"
        f"   target p50 < 100 ms: {verdict(a['scrape_p50'] * ms, TARGETS['scrape_p50_ms'])}"
    )
    if ref:
        print(
            f"\n== reference: APScheduler alone, {args.checks} trivial 60s jobs,"
            f" {args.reference_duration:.0f}s =="
        )
        print(f"lag observations             {ref['observations']:.0f}")
        print(
            f"lag p50 / p99 (exact)        {ref['lag_p50_exact'] * ms:.2f} /"
            f" {ref['lag_p99_exact'] * ms:.2f} ms"
            f"   (p99 from the same buckets: {ref['lag_p99_buckets'] * ms:.2f} ms)"
        )
        print(f"CPU (one core)               {ref['cpu_percent']:.1f} %")
        print(f"RSS peak                     {ref['rss_peak_mb']:.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds measured")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds after start before measuring (every check's first result lands here)",
    )
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--scrape-every", type=float, default=15.0)
    parser.add_argument(
        "--reference-duration", type=float, default=90.0, help="0 skips the reference"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference-job", nargs=2, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_listen())
        return 0
    if args.reference_job:
        sys.path.insert(0, str(ROOT))
        count, duration = args.reference_job
        asyncio.run(_reference(int(count), 60.0, duration))
        return 0
    raise_nofile()
    print(
        f"vaktpost bench: {args.checks} tcp checks, {args.duration:.0f}s,"
        f" scrape every {args.scrape_every:.0f}s; {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="vaktpost-bench-") as tmp:
        agent = run_agent(args, Path(tmp))
    ref = run_reference(args) if args.reference_duration > 0 else {}
    report(args, agent, ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
