"""Cost of backup freshness checks and of the readiness report.

    .venv/bin/python bench/backups.py [--runs 5] [--rebuild]

1. One restic and one borg freshness check (newest snapshot age only) on a
   repository with 1,000 snapshots: wall time, CPU of the agent and of the
   child, RSS of both. Also one full run with repository check and restore test.
2. A readiness report (JSON, table, HTML) for config/example-municipality.yaml,
   or for a generated config of similar shape when that file does not load.

The repositories are built once under /tmp/vaktpost-bench-backups and reused.
1,000 real `restic backup`/`borg create` runs would take minutes (each opens
the repository and derives the key), so one real snapshot is made and the rest
are written directly: restic snapshot files encrypted with the repository's
master key (the format restic itself writes), and borg manifest entries. Both
listings then read exactly what 1,000 real snapshots would give them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

from agent import readiness
from agent.config import Config
from agent.configload import ConfigError, load_config, load_config_text
from agent.web import readiness_render
from checks.base import CheckContext, CheckResult, MemoryStateStore
from checks.borg import BorgCheck, BorgConfig
from checks.restic import ResticCheck, ResticConfig
from core.status import Status

ROOT = Path("/tmp/vaktpost-bench-backups")
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example-municipality.yaml"
SNAPSHOTS = 1000
PASSWORD = "bench-password"


def sh(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        argv, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr}")
    return proc.stdout


# -- restic ------------------------------------------------------------------------


def restic_encrypt(master: dict[str, Any], plaintext: bytes) -> bytes:
    """restic's format: IV || AES-256-CTR(plaintext) || Poly1305-AES MAC of the ciphertext."""
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(base64.b64decode(master["encrypt"])), modes.CTR(iv)).encryptor()
    ciphertext = enc.update(plaintext) + enc.finalize()
    k, r = base64.b64decode(master["mac"]["k"]), base64.b64decode(master["mac"]["r"])
    s = Cipher(algorithms.AES(k), modes.ECB()).encryptor().update(iv)
    mac = Poly1305.generate_tag(r + s, ciphertext)
    return iv + ciphertext + mac


def build_restic(root: Path) -> dict[str, str]:
    env = {
        "RESTIC_REPOSITORY": str(root / "repo"),
        "RESTIC_PASSWORD_FILE": str(root / "password"),
        "RESTIC_CACHE_DIR": str(root / "cache"),
    }
    (root / "password").write_text(PASSWORD)
    src = root / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(100_000))
    sh(["restic", "init", "-q"], env)
    sh(["restic", "backup", "-q", "--host", "srv-app01", str(src)], env)
    master = json.loads(sh(["restic", "cat", "masterkey"], env))
    (snap_id,) = [p.name for p in (root / "repo" / "snapshots").iterdir()]
    snapshot = json.loads(sh(["restic", "cat", "snapshot", snap_id], env))
    start = datetime.now(UTC) - timedelta(hours=SNAPSHOTS)
    for i in range(SNAPSHOTS - 1):
        snapshot["time"] = (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z")
        blob = restic_encrypt(master, json.dumps(snapshot).encode())
        (root / "repo" / "snapshots" / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    listed = json.loads(sh(["restic", "snapshots", "--json", "--no-lock"], env))
    assert len(listed) == SNAPSHOTS, len(listed)
    return env


# -- borg ---------------------------------------------------------------------------

_BORG_FILL = """
import sys
from datetime import datetime, timedelta, timezone
from borg.helpers import Manifest
from borg.logger import setup_logging
from borg.repository import Repository
setup_logging()
path, count = sys.argv[1], int(sys.argv[2])
with Repository(path, exclusive=True) as repository:
    manifest, key = Manifest.load(repository, (Manifest.Operation.WRITE,))
    (base,) = list(manifest.archives.list())
    start = datetime.now(timezone.utc) - timedelta(hours=count)
    for i in range(count - 1):
        ts = (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        manifest.archives[f"srv-app01-{i:04d}"] = (base.id, ts)
    manifest.write()
    repository.commit(compact=False)
"""


def build_borg(root: Path) -> dict[str, str]:
    env = {
        "BORG_REPO": str(root / "repo"),
        "BORG_PASSCOMMAND": f"cat {root / 'password'}",
        "BORG_BASE_DIR": str(root / "base"),
    }
    (root / "password").write_text(PASSWORD)
    src = root / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(100_000))
    sh(["borg", "init", "-e", "repokey-blake2"], env)
    sh(["borg", "create", "::srv-app01-latest", "src"], env, cwd=root)
    # borg is a Python program: its own modules add the other manifest entries.
    sh(["/usr/bin/python3", "-c", _BORG_FILL, str(root / "repo"), str(SNAPSHOTS)], env)
    listed = json.loads(sh(["borg", "list", "--json"], env))["archives"]
    assert len(listed) == SNAPSHOTS, len(listed)
    return env


def repository(tool: str, rebuild: bool) -> Path:
    root = ROOT / tool
    if rebuild and root.exists():
        shutil.rmtree(root)
    if not (root / "ready").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t = time.perf_counter()
        (build_restic if tool == "restic" else build_borg)(root)
        (root / "ready").write_text("")
        print(
            f"built {tool} repository with {SNAPSHOTS} snapshots in {time.perf_counter() - t:.1f}s"
        )
    return root


# -- measuring ----------------------------------------------------------------------


def usage() -> tuple[float, float, int]:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, kids.ru_maxrss


async def measure(check: Any, runs: int) -> dict[str, float]:
    walls: list[float] = []
    cpu0, child0, _ = usage()
    for _ in range(runs):
        t = time.perf_counter()
        result = await check.run()
        walls.append(time.perf_counter() - t)
        assert result.status in (Status.OK, Status.CRITICAL), result.message
    cpu1, child1, child_rss = usage()
    return {
        "wall_ms_median": sorted(walls)[len(walls) // 2] * 1000,
        "wall_ms_max": max(walls) * 1000,
        "agent_cpu_ms": (cpu1 - cpu0) / runs * 1000,
        "child_cpu_ms": (child1 - child0) / runs * 1000,
        "child_max_rss_mib": child_rss / 1024,
        "agent_rss_mib": psutil.Process().memory_info().rss / 2**20,
    }


def checks_for(tool: str, root: Path, full: bool) -> Any:
    off = {} if full else {"check_every": None, "restore_test_every": None}
    ctx = CheckContext(root / "state", "bench", store=MemoryStateStore())
    common = {"name": f"bench-{tool}", "repository": str(root / "repo")}
    common["password_file"] = str(root / "password")
    if tool == "restic":
        return ResticCheck(ResticConfig(type="restic", **common, **off), ctx)
    return BorgCheck(BorgConfig(type="borg", **common, **off), ctx)


def print_row(label: str, m: dict[str, float]) -> None:
    print(
        f"{label:<28} wall {m['wall_ms_median']:7.0f} ms (max {m['wall_ms_max']:5.0f})  "
        f"agent CPU {m['agent_cpu_ms']:5.1f} ms  child CPU {m['child_cpu_ms']:6.0f} ms  "
        f"child max RSS {m['child_max_rss_mib']:5.0f} MiB  agent RSS {m['agent_rss_mib']:4.0f} MiB"
    )


# -- readiness ----------------------------------------------------------------------


def generated_config(departments: int = 8, systems: int = 6) -> Config:
    checks, depts = [], []
    for d in range(departments):
        sys_lines = []
        for s in range(systems):
            name = f"d{d}-s{s}"
            checks.append(f"  - {{name: {name}-restic, type: restic, repository: /r/{name}}}")
            checks.append(f"  - {{name: {name}-files, type: backup_files, path: /b/{name}/*.dump}}")
            sys_lines.append(
                f"      - {{id: s{s}, backups: [{{check: {name}-restic, rpo: 24h}}, "
                f"{{check: {name}-files, rpo: 24h}}]}}"
            )
        depts.append(f"  - id: d{d}\n    systems:\n" + "\n".join(sys_lines))
    text = "checks:\n" + "\n".join(checks) + "\ndepartments:\n" + "\n".join(depts) + "\n"
    return load_config_text(text, "<generated>")


def synthetic_results(config: Config, now: float) -> dict[str, CheckResult]:
    """Every check has a result; backups alternate between ready and stale."""
    out = {}
    for i, check in enumerate(config.checks):
        age = 3600.0 if i % 3 else 40 * 3600.0
        facts = {
            "last_success_timestamp": now - age,
            "verify_at": now - 3600,
            "verify_ok": 1.0,
            "verified_at": now - 3600,
            "restore_test_at": now - 86400,
            "restore_ok": 1.0,
            "restore_tested_at": now - 86400,
            "size_bytes": 1e9,
        }
        out[check.name] = CheckResult(Status.OK, "bench", facts, 0.1, now)
    return out


def bench_readiness(path: Path) -> None:
    try:
        config, source = load_config(path), str(path)
    except (ConfigError, OSError) as exc:
        first = str(exc).splitlines()[0]
        print(f"{path} does not load ({first}); using a generated config of similar shape")
        config, source = generated_config(), "generated (8 departments x 6 systems x 2 backups)"
    now = time.time()
    results = synthetic_results(config, now)
    systems = sum(len(d.systems) for d in config.departments)
    backups = sum(len(s.backups) for d in config.departments for s in d.systems)
    rounds = 200
    timings = {}
    for fmt in ("json", "table", "html"):
        t = time.perf_counter()
        for _ in range(rounds):
            doc = readiness.report(config, results, now)
            if fmt == "json":
                json.dumps(doc)
            elif fmt == "table":
                readiness_render.table(doc)
            else:
                readiness_render.page(doc)
        timings[fmt] = (time.perf_counter() - t) / rounds * 1000
    print(
        f"readiness report for {source}: {len(config.departments)} departments, {systems} systems, "
        f"{backups} backups: json {timings['json']:.2f} ms, table {timings['table']:.2f} ms, "
        f"html {timings['html']:.2f} ms per report"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    for tool in ("restic", "borg"):
        if shutil.which(tool) is None:
            print(f"{tool} not installed: skipped")
            continue
        root = repository(tool, args.rebuild)
        version = sh([tool, "--version"] if tool == "borg" else [tool, "version"], {}).strip()
        print(f"{version}; {SNAPSHOTS} snapshots")
        print_row(
            f"{tool} freshness x{args.runs}",
            await measure(checks_for(tool, root, False), args.runs),
        )
        print_row(f"{tool} full (check+restore)", await measure(checks_for(tool, root, True), 1))
    bench_readiness(EXAMPLE)


if __name__ == "__main__":
    asyncio.run(main())
