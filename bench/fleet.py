"""Benchmark (issue 11): a fleet of three agents on one PostgreSQL against one agent on SQLite.

    .venv/bin/python bench/fleet.py [--checks 9000] [--seconds 120] [--lease 5] [--kills 2]
    .venv/bin/python bench/fleet.py --quick            # a smoke run of ~30 s

Both sides run at the same time on this machine, so whatever else the machine
does falls on both alike:

- **fleet**: a throwaway PostgreSQL 15 cluster (initdb into a temporary directory,
  loopback and a unix socket, trust auth, fsync on like SQLite's synchronous=FULL)
  and three `vaktpost run` processes (srv-a, srv-b, srv-c) on one config with N
  tcp checks at 60 s; check assignment splits them about N/3 per agent;
- **reference**: one `vaktpost run` with the same N checks on SQLite.

The checks probe a loopback listener in its own process that accepts and closes
at once. After a warm-up (every check has run once, the assignment has settled)
the driver measures a window of --seconds: results each side produced (the
agents' vaktpost_check_runs_total), rows written to check_results
(pg_stat_user_tables n_tup_ins + n_tup_upd), the CPU time of every agent and of
every postgres process (from /proc: the postmaster's reaped children count too),
the engine holder's CPU, and each agent's RSS. The machine's own busy time over
the window is printed, so a reader can see how much else ran.

Then the failover: a check `switch` (interval 1 s) in department `bench`, whose
ladder sends a step every --spacing seconds to a loopback webhook receiver in
this process, starts failing when the driver stops the switch's listener. A
second before each next step is due, the engine holder gets kill -9; the figure
is the time from the kill to the receiver getting that step, against the bound
lease + 2 s. The killed agent is started again after the step arrived (a host
that comes back), and the step after the last kill shows whether the ladder kept
its clock.

Targets: fleet CPU per result (agents + database) within 2x of SQLite; failover
within lease + 2 s. Missed targets are reported, not hidden; the exit code is 1
only when the bench itself failed (an agent died, a step never arrived).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scheduler_10k
from scheduler_10k import free_port, raise_nofile

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "vaktpost"
AGENT_CMD = (sys.executable, "-m", "agent.cli")
FLEET = ("srv-a", "srv-b", "srv-c")
SOLO = "solo"
OVERHEAD_TARGET = 2.0  # fleet CPU per result / SQLite's
FAILOVER_SLACK = 2.0  # seconds over the lease
KILL_LEAD = 1.0  # the holder dies this long before the step is due (it may tick early)


class BenchError(Exception):
    """The bench could not run or measure (not a missed target)."""


def start_listener() -> tuple[subprocess.Popen[str], int]:
    """scheduler_10k.py's loopback listener: it accepts and closes at once."""
    proc = subprocess.Popen(
        [sys.executable, scheduler_10k.__file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise BenchError("the loopback listener did not start")
    return proc, int(line)


def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except BenchError:
            raise
        except Exception as exc:  # not up yet: connection refused and the like
            last = exc
        if time.monotonic() >= end:
            detail = f" (last error: {last})" if last else ""
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(every)


# -- PostgreSQL ---------------------------------------------------------------------------
@dataclass
class Postgres:
    bin: Path
    dir: Path
    port: int
    run_as: list[str]

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def dsn(self, db: str = "vaktpost") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{db}?connect_timeout=5"

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        self.ctl("-m", "immediate", "-w", "stop")


def start_postgres(pg_bin: Path) -> Postgres:
    if not (pg_bin / "initdb").exists():
        raise BenchError(f"PostgreSQL is not installed ({pg_bin}; Debian package postgresql-15)")
    # Under /tmp itself: the server runs as `postgres`, which must reach its directory.
    d = Path(tempfile.mkdtemp(prefix="vaktpost-bench-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise BenchError("running as root and there is no `postgres` user") from None
        os.chown(d, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    pg = Postgres(pg_bin, d, free_port(), run_as)
    init = subprocess.run(
        [
            *(*run_as, str(pg_bin / "initdb"), "-D", str(pg.data), "-A", "trust"),
            *("-U", PG_USER, "--no-sync", "-E", "UTF8", "--locale=C"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if init.returncode != 0:
        raise BenchError(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    # fsync stays on: a committed result survives power loss, as SQLite's synchronous=FULL.
    options = f"-p {pg.port} -k {d} -c listen_addresses=127.0.0.1"
    started = pg.ctl("-l", str(d / "log"), "-w", "-o", options, "start")
    if started.returncode != 0:
        raise BenchError(f"PostgreSQL did not start; see {d / 'log'}")
    sql(pg.dsn("postgres"), "CREATE DATABASE vaktpost", autocommit=True)
    return pg


def sql(dsn: str, query: str, autocommit: bool = True) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=autocommit) as conn:
        cur = conn.execute(query)
        return list(cur.fetchall()) if cur.description else []


# -- the webhook receiver ----------------------------------------------------------------
@dataclass
class Receiver:
    """A webhook receiver on loopback, on a loop thread of its own: (arrival, body)."""

    deliveries: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Any = None

    async def _start(self) -> None:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            at = time.time()
            self.deliveries.append((at, await request.json()))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def first_arrival(self, step: int) -> float | None:
        """When the bench system's step first arrived (a repeat keeps its dedup key)."""
        times = [
            at
            for at, body in list(self.deliveries)
            if body.get("system") == "switched"
            and body.get("status") != "resolved"
            and body.get("step") == step
        ]
        return min(times) if times else None


# -- the agents ----------------------------------------------------------------------------
def write_config(
    path: Path,
    *,
    name: str,
    port: int,
    state: Path,
    checks: int,
    interval: float,
    target: int,
    switch: int,
    hook: str,
    spacing: float,
    steps: int,
    dsn: str | None,
    lease: float,
) -> None:
    lines = [
        "agent:",
        f"  name: {name}",
        f"  listen: 127.0.0.1:{port}",
        f"  state_dir: {state}",
    ]
    if dsn is not None:
        lines += [f'  store: "{dsn}"', f"  fleet: {{lease: {lease}s}}"]
    lines += [
        f"  defaults: {{interval: {interval}s, timeout: 5s, failures_before_alert: 2}}",
        "channels:",
        "  log: {type: log, default: true}",
        f'  hook: {{type: webhook, url: "{hook}", concurrency: 1}}',
        "checks:",
    ]
    lines += [
        f"  - {{name: tcp-{i:05d}, type: tcp, host: 127.0.0.1, port: {target}}}"
        for i in range(checks)
    ]
    lines += [
        f"  - {{name: switch, type: tcp, host: 127.0.0.1, port: {switch}, interval: 1s,"
        " timeout: 1s, failures_before_alert: 1}",
        "departments:",
        "  - id: bench",
        "    systems: [{id: switched, checks: [switch]}]",
        "    escalation:",
    ]
    lines += [f"      - {{after: {k * spacing:g}s, notify: [hook]}}" for k in range(steps)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Agent:
    def __init__(self, name: str, config: Path, port: int, log: Path) -> None:
        self.name, self.config, self.port, self.log = name, config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*AGENT_CMD, "run", "-c", str(self.config), "--log-level", "warning"],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> str:
        code = None if self.proc is None else self.proc.poll()
        return f"agent {self.name} exited with {code}; see {self.log}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 30.0) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body

    def ready(self) -> bool:
        if not self.alive():
            raise BenchError(self.exited())
        return self.get("/readyz", 5.0) is not None

    def own_runs(self) -> float:
        """Probes this agent ran itself (its book counts only its own runs)."""
        total = 0.0
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("vaktpost_check_runs_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process plus its reaped children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry.name))
    return out


def tree_cpu(pid: int) -> float:
    """A process, its live children and (through its reaped children) those that ended:
    a postgres backend that exits inside the window still counts."""
    total = proc_cpu(pid)
    for child in children_of(pid):
        with contextlib.suppress(OSError):
            own = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(own[11]) + int(own[12])) / os.sysconf("SC_CLK_TCK")
    return total


def status_kib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def pss_kib(pid: int) -> float:
    """Proportional set size: the postgres processes share their buffers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


# -- measuring ---------------------------------------------------------------------------------
@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]  # agent name -> CPU s; "postgres" -> the server's
    writes: float  # check_results rows inserted + updated
    rows: float  # rows written to every table
    commits: float
    busy: float
    total: float


def pg_counters(dsn: str) -> tuple[float, float, float]:
    (results,) = sql(
        dsn,
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables"
        " WHERE relname = 'check_results'",
    )
    (rows,) = sql(
        dsn, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
    )
    (commits,) = sql(
        dsn, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    return float(results[0]), float(rows[0]), float(commits[0])


def snapshot(agents: dict[str, Agent], pg: Postgres) -> Snapshot:
    cpu = {name: proc_cpu(a.pid) for name, a in agents.items()}
    cpu["postgres"] = tree_cpu(pg.postmaster())
    writes, rows, commits = pg_counters(pg.dsn())
    busy, total = machine_busy()
    return Snapshot(time.monotonic(), cpu, writes, rows, commits, busy, total)


def holder(pg: Postgres) -> str | None:
    rows = sql(
        pg.dsn(), "SELECT holder_name FROM leases WHERE name='engine' AND expires_at > now()"
    )
    return str(rows[0][0]) if rows else None


def assigned(pg: Postgres) -> dict[str, int]:
    rows = sql(pg.dsn(), "SELECT name, checks FROM fleet_agents WHERE expires_at > now()")
    return {str(r[0]): int(r[1]) for r in rows}


def measure(
    args: argparse.Namespace, agents: dict[str, Agent], pg: Postgres, log: Any
) -> dict[str, Any]:
    """The steady-state window: both sides together, every --sample seconds."""
    fleet = [n for n in agents if n != SOLO]
    # Scrapes bracket the window from outside, so their own CPU is not in it.
    runs0 = {n: agents[n].own_runs() for n in agents}
    first = snapshot(agents, pg)
    holders = {holder(pg)}
    samples = [first]
    end = first.at + args.seconds
    while time.monotonic() < end:
        time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
        for agent in agents.values():
            if not agent.alive():
                raise BenchError(agent.exited() + " (during the window)")
        samples.append(snapshot(agents, pg))
        holders.add(holder(pg))
    last = samples[-1]
    runs1 = {n: agents[n].own_runs() for n in agents}
    span = last.at - first.at
    cpu = {k: last.cpu[k] - first.cpu[k] for k in last.cpu}
    runs = {n: runs1[n] - runs0[n] for n in agents}
    fleet_runs = sum(runs[n] for n in fleet)
    holder_now = holder(pg)
    # Fleet/SQLite CPU ratio per sample window: how much the machine's noise moves it.
    ratios = []
    for a, b in itertools.pairwise(samples):
        solo = b.cpu[SOLO] - a.cpu[SOLO]
        both = sum(b.cpu[n] - a.cpu[n] for n in [*fleet, "postgres"])
        if solo > 0:
            ratios.append(both / solo * (runs[SOLO] / max(1.0, fleet_runs)))
    rss = {
        n: {
            "peak_mb": status_kib(a.pid, "VmHWM") / 1024,
            "end_mb": status_kib(a.pid, "VmRSS") / 1024,
        }
        for n, a in agents.items()
    }
    pm = pg.postmaster()
    pg_pss = (pss_kib(pm) + sum(pss_kib(c) for c in children_of(pm))) / 1024
    busy = last.busy - first.busy
    ours = sum(cpu.values())
    out = {
        "seconds": span,
        "runs": runs,
        "cpu": cpu,
        "fleet_results": fleet_runs,
        "solo_results": runs[SOLO],
        "writes": last.writes - first.writes,
        "rows": last.rows - first.rows,
        "commits": last.commits - first.commits,
        "holder": holder_now,
        "holder_changes": len(holders - {None}) - 1,
        "ratio_windows": ratios,
        "rss": rss,
        "postgres_pss_mb": pg_pss,
        "machine_busy_cores": busy / span,
        "others_cores": max(0.0, busy - ours) / span,
        "cores": os.cpu_count() or 0,
        "assigned": assigned(pg),
    }
    print(
        f"window: {span:.0f} s measured; machine busy {out['machine_busy_cores']:.2f} of"
        f" {out['cores']} cores, of which {out['others_cores']:.2f} not this bench",
        file=log,
        flush=True,
    )
    return out


def failover(
    args: argparse.Namespace,
    agents: dict[str, Agent],
    pg: Postgres,
    receiver: Receiver,
    switch: subprocess.Popen[str],
    log: Any,
) -> dict[str, Any]:
    """kill -9 of the engine holder a second before each next step is due."""
    switch.terminate()  # the switch check fails from its next probe on
    switch.wait(10)
    wait_until(lambda: receiver.first_arrival(0), 30, "step 0 of the bench incident")
    rows = wait_until(
        lambda: sql(
            pg.dsn(),
            "SELECT id, started_at FROM incidents WHERE system = 'switched'"
            " AND resolved_at IS NULL ORDER BY id DESC LIMIT 1",
        ),
        10,
        "the bench incident in the store",
    )
    started = float(rows[0][1])
    bound = args.lease + FAILOVER_SLACK
    kills: list[dict[str, Any]] = []
    for step in range(1, args.kills + 1):
        due = started + step * args.spacing
        time.sleep(max(0.0, due - KILL_LEAD - time.time()))  # pacing: the kill's moment
        early = receiver.first_arrival(step)
        victim_name = holder(pg)
        if victim_name is None or victim_name not in agents:
            raise BenchError(f"no live engine holder before step {step}")
        victim = agents[victim_name]
        killed_at = time.time()
        victim.kill9()
        arrived = wait_until(
            lambda s=step: receiver.first_arrival(s),
            args.lease + 60,
            f"step {step} after kill -9 of {victim_name}",
        )
        new_holder = holder(pg)
        kills.append(
            {
                "step": step,
                "killed": victim_name,
                "killed_before_due_s": due - killed_at,
                "kill_to_delivered_s": arrived - killed_at,
                "late_s": arrived - due,
                "sent_before_kill": early is not None,
                "new_holder": new_holder,
                "within_bound": arrived - killed_at <= bound,
            }
        )
        print(
            f"kill -9 {victim_name} {due - killed_at:.1f} s before step {step} was due:"
            f" delivered {arrived - killed_at:.2f} s after the kill (holder now {new_holder})",
            file=log,
            flush=True,
        )
        for name, agent in agents.items():
            if name != victim_name and not agent.alive():
                raise BenchError(agent.exited() + f" (after the kill of {victim_name})")
        victim.start()  # the host comes back
        wait_until(victim.ready, 120, f"{victim_name} to be ready again")
    after = args.kills + 1
    due = started + after * args.spacing
    arrived = wait_until(
        lambda: receiver.first_arrival(after), max(30.0, due - time.time() + 30), f"step {after}"
    )
    return {"bound_s": bound, "kills": kills, "next_step": after, "next_step_late_s": arrived - due}


# -- the run ------------------------------------------------------------------------------------
def run(args: argparse.Namespace, work: Path, log: Any) -> dict[str, Any]:
    pg = start_postgres(Path(args.pg_bin))
    listener: subprocess.Popen[str] | None = None
    switch: subprocess.Popen[str] | None = None
    agents: dict[str, Agent] = {}
    try:
        listener, target = start_listener()
        switch, switch_port = start_listener()
        with Receiver() as receiver:
            steps = args.kills + 2
            common = {
                "checks": args.checks,
                "interval": args.interval,
                "target": target,
                "hook": receiver.url,
                "spacing": args.spacing,
                "steps": steps,
                "lease": args.lease,
            }
            for name in (*FLEET, SOLO):
                port = free_port()
                config = work / f"{name}.yaml"
                write_config(
                    config,
                    name=name,
                    port=port,
                    state=work / f"state-{name}",
                    dsn=pg.dsn() if name != SOLO else None,
                    # The reference's switch never opens an incident: it probes the listener.
                    switch=switch_port if name != SOLO else target,
                    **common,
                )
                agents[name] = Agent(name, config, port, work / f"{name}.log")
            started = time.monotonic()
            for agent in agents.values():
                agent.start()
            for agent in agents.values():
                wait_until(agent.ready, 180, f"{agent.name} to be ready")
            startup = time.monotonic() - started
            print(f"4 agents ready in {startup:.1f} s; warm-up {args.warmup:.0f} s", file=log)
            time.sleep(args.warmup)  # pacing: every check runs once, the assignment settles
            wait_until(
                lambda: (
                    sum(assigned(pg).values()) >= args.checks + 1
                    and len(assigned(pg)) == len(FLEET)
                ),
                60,
                "the three agents to share every check",
            )
            window = measure(args, agents, pg, log)
            agents[SOLO].stop()  # the failover needs the machine more than the reference
            try:
                fail = failover(args, {n: agents[n] for n in FLEET}, pg, receiver, switch, log)
            except BenchError as exc:  # the window's figures still stand: print them
                fail = {"error": str(exc), "bound_s": args.lease + FAILOVER_SLACK, "kills": []}
            return {
                "checks": args.checks,
                "interval_s": args.interval,
                "lease_s": args.lease,
                "startup_s": startup,
                "window": window,
                "failover": fail,
            }
    finally:
        for agent in agents.values():
            agent.stop()
        for p in (listener, switch):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(args: argparse.Namespace, r: dict[str, Any]) -> tuple[list[list[str]], float]:
    w = r["window"]
    span = w["seconds"]
    fleet_res, solo_res = max(1.0, w["fleet_results"]), max(1.0, w["solo_results"])
    us = 1e6
    agents_cpu = sum(w["cpu"][n] for n in FLEET)
    db_cpu = w["cpu"]["postgres"]
    solo_cpu = w["cpu"][SOLO]
    fleet_per = (agents_cpu + db_cpu) / fleet_res * us
    solo_per = solo_cpu / solo_res * us
    ratio = fleet_per / solo_per if solo_per else float("inf")
    h = w["holder"]
    holder_cpu = w["cpu"].get(h, float("nan")) if h else float("nan")
    rows = [
        ["figure", "fleet: 3 agents, PostgreSQL", "reference: 1 agent, SQLite", "target"],
        [
            "results per second (probes run)",
            f"{fleet_res / span:.1f}"
            + " ("
            + " / ".join(f"{w['runs'][n] / span:.0f}" for n in FLEET)
            + ")",
            f"{solo_res / span:.1f}",
            "",
        ],
        [
            "store writes per second (result rows)",
            f"{w['writes'] / span:.1f} (pg_stat_user_tables check_results)",
            f"{solo_res / span:.1f} (one row per result, counted by the agent)",
            "",
        ],
        [
            "  all rows written / commits per second",
            f"{w['rows'] / span:.1f} / {w['commits'] / span:.1f}",
            "(in-process; in agent CPU)",
            "",
        ],
        [
            "database CPU per result",
            f"{db_cpu / fleet_res * us:.0f} us ({100 * db_cpu / span:.1f} % of a core)",
            "(in-process; in agent CPU)",
            "",
        ],
        [
            "agent CPU per result",
            f"{agents_cpu / fleet_res * us:.0f} us (all three: {100 * agents_cpu / span:.1f} %"
            " of a core; " + " / ".join(f"{100 * w['cpu'][n] / span:.1f}" for n in FLEET) + " %)",
            f"{solo_per:.0f} us ({100 * solo_cpu / span:.1f} % of a core)",
            "",
        ],
        [
            "CPU per result, agents + database",
            f"{fleet_per:.0f} us = {ratio:.2f}x SQLite"
            + (
                f" (per {args.sample:.0f} s window: {min(w['ratio_windows']):.2f}-"
                f"{max(w['ratio_windows']):.2f}x)"
                if w["ratio_windows"]
                else ""
            ),
            f"{solo_per:.0f} us",
            f"<= {OVERHEAD_TARGET:g}x: {verdict(ratio <= OVERHEAD_TARGET)}",
        ],
        [
            "engine holder CPU",
            f"{h}: {100 * holder_cpu / span:.1f} % of a core"
            f" ({holder_cpu / fleet_res * us:.0f} us per fleet result;"
            f" holder changes in the window: {w['holder_changes']})",
            f"{100 * solo_cpu / span:.1f} % (it is its own holder)",
            "",
        ],
        [
            "RSS per agent, peak / end",
            ", ".join(
                f"{n} {w['rss'][n]['peak_mb']:.0f}/{w['rss'][n]['end_mb']:.0f}" for n in FLEET
            )
            + " MB",
            f"{w['rss'][SOLO]['peak_mb']:.0f}/{w['rss'][SOLO]['end_mb']:.0f} MB",
            "",
        ],
        ["postgres processes, PSS", f"{w['postgres_pss_mb']:.0f} MB", "", ""],
        [
            "checks per agent (assignment)",
            " / ".join(f"{w['assigned'].get(n, 0)}" for n in FLEET),
            f"{r['checks'] + 1}",
            "",
        ],
    ]
    f = r["failover"]
    if "error" in f:
        rows.append(["failover", f"FAILED: {f['error']}", "", ""])
        return rows, ratio
    for k in f["kills"]:
        rows.append(
            [
                f"failover {k['step']}: kill -9 holder -> step {k['step']} delivered",
                f"{k['kill_to_delivered_s']:.2f} s (killed {k['killed']}"
                f" {k['killed_before_due_s']:.1f} s before due; new holder {k['new_holder']})"
                + (" (sent before the kill)" if k["sent_before_kill"] else ""),
                "",
                f"<= lease + {FAILOVER_SLACK:g} s = {f['bound_s']:g} s:"
                f" {verdict(k['within_bound'])}",
            ]
        )
    rows.append(
        [
            f"step {f['next_step']} after the kills, against its due time",
            f"{f['next_step_late_s']:+.2f} s",
            "",
            "on the incident's clock",
        ]
    )
    return rows, ratio


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=None, help="checks of the config (9000)")
    parser.add_argument("--seconds", type=float, default=None, help="measuring window (120)")
    parser.add_argument("--warmup", type=float, default=None, help="before the window (60)")
    parser.add_argument("--interval", type=float, default=None, help="checks' interval (60)")
    parser.add_argument("--lease", type=float, default=None, help="agent.fleet.lease (5)")
    parser.add_argument("--kills", type=int, default=None, help="holder kills (2)")
    parser.add_argument("--spacing", type=float, default=None, help="ladder step spacing")
    parser.add_argument("--sample", type=float, default=None, help="sample every (10)")
    parser.add_argument("--pg-bin", default=str(PG_BIN))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run (~30 s)")
    args = parser.parse_args()
    quick = {"checks": 30, "seconds": 6.0, "warmup": 4.0, "interval": 1.0, "lease": 3.0}
    full = {"checks": 9000, "seconds": 120.0, "warmup": 60.0, "interval": 60.0, "lease": 5.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.kills is None:
        args.kills = 1 if args.quick else 2
    if args.sample is None:
        args.sample = 2.0 if args.quick else 10.0
    if args.spacing is None:
        # Room for the takeover (< lease + 2 s) and the killed agent's restart before
        # the next kill.
        args.spacing = args.lease + (4.0 if args.quick else 8.0)
    if args.checks < 1 or args.seconds <= 0 or args.kills < 1 or args.lease < 3:
        print("fleet.py: need --checks >= 1, --seconds > 0, --kills >= 1, --lease >= 3")
        return 2
    raise_nofile()
    sys.path.insert(0, str(ROOT))
    print(
        f"vaktpost fleet bench: {args.checks} tcp checks every {args.interval:g} s, lease"
        f" {args.lease:g} s; {args.warmup:.0f} s warm-up, then {args.seconds:.0f} s measured"
        f" (fleet and SQLite side by side); {os.cpu_count()} CPUs shared with other work",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="vaktpost-bench-fleet-"))
    try:
        result = run(args, work, sys.stdout)
    except BenchError as exc:
        print(f"fleet.py: {exc} (agent logs kept in {work})", file=sys.stderr)
        return 1
    if "error" not in result["failover"]:
        shutil.rmtree(work, ignore_errors=True)
    rows, ratio = report(args, result)
    result["ratio"] = ratio
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if "error" in result["failover"]:
        print(f"fleet.py: the failover failed (agent logs kept in {work})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
