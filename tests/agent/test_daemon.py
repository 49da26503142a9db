"""The daemon as a subprocess on a free port: metrics, API, reload, signals, logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT, VAKTPOST, AgentProcess, free_port, wait_until


class Daemon(AgentProcess):
    """The agent on `port`; the constructor returns once /healthz answers."""

    port: int

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None) -> None:
        super().__init__(config, port=port, env=env)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        status, body = self.get("/metrics")
        assert status == 200
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                key = tuple(sorted(sample.labels.items()))
                out.setdefault(sample.name, {})[key] = sample.value
        return out

    def runs(self, check: str) -> float:
        samples = self.metrics().get("vaktpost_check_runs_total", {})
        return sum(v for k, v in samples.items() if ("check", check) in k)

    def log_records(self) -> list[dict[str, Any]]:
        """Every line is JSON: a line that is not fails the test (stricter than the helper)."""
        return [json.loads(line) for line in self.log_text().splitlines() if line]


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@pytest.fixture
def daemon(tmp_path: Path, listener: int) -> Iterator[Daemon]:
    port = free_port()
    config = tmp_path / "vaktpost.yaml"
    config.write_text(
        f"agent: {{listen: 127.0.0.1:{port}, state_dir: {tmp_path}/state, name: test-agent}}\n"
        "checks:\n"
        f"  - {{name: app, type: tcp, host: 127.0.0.1, port: {listener}, interval: 200ms}}\n"
        "  - {name: mem, type: memory, interval: 200ms}\n"
        "  - {name: uplink, type: link, targets: ['tcp://127.0.0.1:1'], interval: 200ms}\n"
    )
    with Daemon(config, port) as d:
        yield d


def test_metrics_parse_and_carry_the_design_families(daemon: Daemon) -> None:
    wait_until(lambda: daemon.runs("app") >= 1 and daemon.runs("uplink") >= 1, what="first runs")
    m = daemon.metrics()
    app = (("check", "app"), ("type", "tcp"))
    assert m["vaktpost_check_up"][app] == 1.0
    assert m["vaktpost_check_status"][app] == 0.0
    uplink = (("check", "uplink"), ("type", "link"))
    assert m["vaktpost_check_up"][uplink] == 0.0
    assert m["vaktpost_check_status"][uplink] == 2.0
    assert m["vaktpost_link_targets_up"][(("check", "uplink"),)] == 0.0
    assert 0 < m["vaktpost_check_duration_seconds"][app] < 1
    assert m["vaktpost_check_last_run_timestamp_seconds"][(("check", "app"),)] > time.time() - 60
    assert m["vaktpost_check_runs_total"][(("check", "app"), ("status", "ok"))] >= 1
    assert m["vaktpost_build_info"][(("version", "0.1.0"),)] == 1.0
    assert m["vaktpost_config_reload_success"][()] == 1.0
    assert m["vaktpost_scheduler_lag_seconds_count"][()] >= 2  # app and uplink ran
    assert m["process_resident_memory_bytes"][()] > 0


def test_api_checks_health_and_errors(daemon: Daemon) -> None:
    wait_until(lambda: daemon.runs("mem") >= 1, what="a memory result")
    status, body = daemon.get("/api/v1/checks")
    assert status == 200
    checks = {c["name"]: c for c in json.loads(body)["checks"]}
    assert set(checks) == {"app", "mem", "uplink"}
    keys = {"name", "type", "status", "message", "duration_seconds", "facts", "agent"}
    assert set(checks["mem"]) == keys
    assert checks["mem"]["agent"] == "test-agent"  # alone: this agent ran it
    assert checks["mem"]["status"] == "ok"
    assert daemon.get("/readyz")[0] == 200
    assert daemon.get("/nope") == (404, b'{"error": "Not Found"}')
    status, body = daemon.request("POST", "/-/reload", b"x" * (70 * 1024))
    assert status == 413
    assert json.loads(body) == {"error": "request body over 65536 bytes"}
    status, body = daemon.get("/")
    assert status == 200
    assert b"test-agent" in body and b"<script" not in body


def test_sighup_with_broken_config_keeps_old_checks(daemon: Daemon) -> None:
    wait_until(lambda: daemon.runs("app") >= 1, what="a first run")
    good = daemon.config.read_text()
    daemon.config.write_text(good + "  - {name: broken, type: tcp, port: 99999}\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: daemon.metrics()["vaktpost_config_reload_success"][()] == 0.0,
        what="reload failure to show",
    )
    before = daemon.runs("app")
    wait_until(lambda: daemon.runs("app") > before + 1, what="old checks to keep running")
    errors = [r for r in daemon.log_records() if r["msg"].startswith("config reload rejected")]
    assert len(errors) == 1
    assert "checks[3].host: missing required key" in errors[0]["errors"]
    assert f"{daemon.config}:6: checks[3].port" in errors[0]["errors"]
    status, body = daemon.request("POST", "/-/reload")
    assert status == 400
    assert json.loads(body)["problems"][0].startswith(f"{daemon.config}:6: checks[3]")
    # A good config again: the new check runs, the gauge recovers.
    daemon.config.write_text(good + "  - {name: load, type: load, interval: 200ms}\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.runs("load") >= 1, what="the added check to run")
    assert daemon.metrics()["vaktpost_config_reload_success"][()] == 1.0


def test_sigterm_exits_zero_within_five_seconds(daemon: Daemon) -> None:
    wait_until(lambda: daemon.runs("app") >= 1 and daemon.runs("uplink") >= 1, what="first runs")
    start = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=5) == 0
    assert time.monotonic() - start < 5
    records = daemon.log_records()
    assert records[-1]["msg"] == "vaktpost stopped"
    # Results were flushed to the state store on the way out.
    import sqlite3

    db = sqlite3.connect(daemon.config.parent / "state" / "vaktpost.db")
    rows = dict(db.execute("SELECT check_name, status FROM check_results").fetchall())
    db.close()
    assert rows["app"] == "ok" and rows["uplink"] == "critical"


def test_sigterm_with_a_hanging_probe_still_exits_in_time(tmp_path: Path) -> None:
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(0o755)
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"agent: {{listen: 127.0.0.1:{port}, state_dir: {tmp_path}/state}}\n"
        f"checks: [{{name: h, type: command, argv: [{hang}], interval: 100ms, timeout: 60s}}]\n"
    )
    with Daemon(config, port) as d:
        wait_until(
            lambda: any(p.cmdline()[-2:] == ["sleep", "60"] for p in _children(d.proc.pid)),
            what="the plugin to start",
        )
        start = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=5) == 0
        assert time.monotonic() - start < 5
        wait_until(lambda: not _children(d.proc.pid), timeout=2, what="no plugin left behind")


def _children(pid: int) -> list[Any]:
    import psutil

    out = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.cmdline()[-2:] == ["sleep", "60"] and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def test_logs_are_json_lines_when_not_a_tty(daemon: Daemon) -> None:
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(timeout=5)
    records = daemon.log_records()
    (started,) = [r for r in records if r["msg"] == "vaktpost started"]
    assert started["listen"] == f"127.0.0.1:{daemon.port}"
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


def test_invalid_config_at_start_exits_1_with_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("agent:\n  listen: nowhere\n")
    proc = subprocess.run(
        [*VAKTPOST, "run", "-c", str(config)], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"{config}:2: agent.listen: invalid listen address: use host:port, e.g. 127.0.0.1:9730"
    )


def test_port_in_use_fails_cleanly(tmp_path: Path, listener: int) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"agent: {{listen: 127.0.0.1:{listener}, state_dir: {tmp_path}/s}}\n")
    proc = subprocess.run(
        [*VAKTPOST, "run", "-c", str(config)], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert proc.returncode == 1
    assert "address already in use" in proc.stderr.lower()


def test_embedded_default_config_validates() -> None:
    proc = subprocess.run(
        [*VAKTPOST, "validate"], capture_output=True, text=True, cwd=ROOT, env=os.environ
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<default>: ok (5 checks")


def test_systemd_notify_ready_and_watchdog(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify.sock"))
        notify.settimeout(10)
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(f"agent: {{listen: 127.0.0.1:{port}, state_dir: {tmp_path}/s}}\n")
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"}
        with Daemon(config, port, env) as d:
            assert notify.recv(64) == b"READY=1"
            assert notify.recv(64) == b"WATCHDOG=1"
            d.proc.send_signal(signal.SIGTERM)
            messages = []
            while b"STOPPING=1" not in messages:
                messages.append(notify.recv(64))
            assert d.proc.wait(timeout=5) == 0
