"""deploy/: promtool on the scrape config and rules, the dashboard's metric names, the
systemd unit, and real Prometheus scraping a real `vaktpost run` on loopback."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, VAKTPOST, free_port, require_binary, wait_until

DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "vaktpost-dashboard.json"
# Prometheus' own series that a dashboard over vaktpost may use besides vaktpost_*.
PROMETHEUS_SERIES = {"up"}


def run(argv: list[str], cwd: Path = ROOT, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# -- promtool ---------------------------------------------------------------------------
def test_promtool_accepts_the_fleet_scrape_config() -> None:
    promtool = require_binary("promtool")
    done = run([promtool, "check", "config", "prometheus.yml"], cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = require_binary("promtool")
    done = run([promtool, "check", "rules", "vaktpost-rules.yml"], cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = re.search(r"SUCCESS: (\d+) rules found", done.stdout)
    assert rules and int(rules.group(1)) >= 10, done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    promtool = require_binary("promtool")
    done = run([promtool, "test", "rules", "vaktpost-rules.test.yml"], cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_rule_has_a_promtool_test() -> None:
    rules = (PROM_DIR / "vaktpost-rules.yml").read_text(encoding="utf-8")
    tests = (PROM_DIR / "vaktpost-rules.test.yml").read_text(encoding="utf-8")
    alerts = set(re.findall(r"^\s*- alert: (\w+)", rules, re.M))
    tested = set(re.findall(r"alertname: (\w+)", tests))
    assert alerts, "no alert rules found"
    assert alerts <= tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


# -- the Grafana dashboard ------------------------------------------------------------
def documented_metric_names() -> set[str]:
    """The metric names documented in docs/metrics.md (the contract's names and ours)."""
    reference = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`(vaktpost_[a-z_]+)`", reference))
    histograms = {n for n in names if n.endswith("_lag_seconds")}
    for h in histograms:
        names |= {f"{h}_bucket", f"{h}_sum", f"{h}_count"}
    return names


def dashboard_exprs(node: Any) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets, variables, annotations."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(dashboard_exprs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(dashboard_exprs(item))
    return found


def test_dashboard_parses_and_uses_only_documented_metric_names() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 25
    known = documented_metric_names()
    assert "vaktpost_department_state" in known and "vaktpost_check_up" in known
    used = {m for e in exprs for m in re.findall(r"\bvaktpost_[a-z_]+", e)}
    assert used <= known, f"not in docs/metrics.md: {sorted(used - known)}"
    # The dashboard is about continuity: these must stay on it.
    assert {
        "vaktpost_department_state",
        "vaktpost_backup_ready",
        "vaktpost_check_status",
        "vaktpost_system_mtpd_remaining_seconds",
        "vaktpost_ups_on_battery",
        "vaktpost_scheduler_lag_seconds_bucket",
    } <= used
    others = {
        word
        for e in exprs
        for word in re.findall(r"\b([a-z_]+)\{", e)
        if not word.startswith("vaktpost_")
    }
    assert others <= PROMETHEUS_SERIES, f"series that vaktpost does not export: {others}"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids)), "duplicate panel ids"


# -- the systemd unit --------------------------------------------------------------------
def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "vaktpost.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_unit_is_a_hardened_notify_service() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["WatchdogSec"] and s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["StateDirectory"] == ["vaktpost"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["AmbientCapabilities"] == ["CAP_NET_RAW"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert "DynamicUser" in s or s["User"] == ["vaktpost"]


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    # The unit names the installed binary; point it at this checkout's instead.
    exe = Path(VAKTPOST[0]).with_name("vaktpost")
    text = (DEPLOY / "vaktpost.service").read_text(encoding="utf-8")
    unit = tmp_path / "vaktpost.service"
    unit.write_text(text.replace("/usr/local/bin/vaktpost", str(exe)), encoding="utf-8")
    done = run([analyze, "verify", str(unit)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vaktpost.service" not in done.stderr, done.stderr


# -- real Prometheus scraping a real agent ---------------------------------------------------
class LoopbackListener:
    """A TCP port that accepts and closes at once, until closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def query(base: str, promql: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def scalar(base: str, promql: str) -> float | None:
    result = query(base, promql)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stack:
    def __init__(self, prometheus: str, agent: str, listener: LoopbackListener) -> None:
        self.prometheus = prometheus
        self.agent = agent
        self.listener = listener


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("deploy")
    listener = LoopbackListener()
    agent_port, prom_port = free_port(), free_port()
    config = tmp / "vaktpost.yaml"
    config.write_text(
        f"""
agent:
  name: deploy-test
  listen: 127.0.0.1:{agent_port}
  state_dir: {tmp / "state"}
  defaults: {{interval: 1s, timeout: 1s, failures_before_alert: 1}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: loopback-listener, type: tcp, host: 127.0.0.1, port: {listener.port}}}
  - {{name: memory, type: memory, warn_percent: 100, critical_percent: 100}}
""",
        encoding="utf-8",
    )
    shutil.copy(PROM_DIR / "vaktpost-rules.yml", tmp / "vaktpost-rules.yml")
    (tmp / "prometheus.yml").write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [vaktpost-rules.yml]
scrape_configs:
  - job_name: vaktpost
    static_configs: [{{targets: ["127.0.0.1:{agent_port}"]}}]
""",
        encoding="utf-8",
    )
    agent_log = (tmp / "agent.log").open("wb")
    prom_log = (tmp / "prometheus.log").open("wb")
    agent = subprocess.Popen(
        [*VAKTPOST, "run", "-c", str(config)], cwd=ROOT, stdout=agent_log, stderr=agent_log
    )
    prometheus = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--web.enable-lifecycle",
        ],
        stdout=prom_log,
        stderr=prom_log,
    )
    try:
        agent_url, prom_url = f"http://127.0.0.1:{agent_port}", f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: http_ok(agent_url + "/readyz"), 15, "vaktpost /readyz")
        wait_until(lambda: http_ok(prom_url + "/-/ready"), 20, "prometheus /-/ready")
        yield Stack(prom_url, agent_url, listener)
    finally:
        stop(prometheus)
        stop(agent)
        listener.close()
        agent_log.close()
        prom_log.close()


def test_real_prometheus_scrapes_the_agent_and_sees_check_results(stack: Stack) -> None:
    base = stack.prometheus
    wait_until(lambda: scalar(base, 'up{job="vaktpost"}') == 1.0, 20, "up{job=vaktpost} == 1")
    wait_until(
        lambda: scalar(base, 'vaktpost_check_up{check="loopback-listener", type="tcp"}') == 1.0,
        20,
        "the tcp check up in Prometheus",
    )
    wait_until(
        lambda: scalar(base, 'vaktpost_check_up{check="memory", type="memory"}') == 1.0,
        20,
        "the memory check up in Prometheus",
    )
    assert scalar(base, "vaktpost_build_info") == 1.0
    assert scalar(base, "vaktpost_config_reload_success") == 1.0
    assert (scalar(base, "vaktpost_scheduler_lag_seconds_count") or 0) >= 1

    # The listener goes away: the next probe fails, and Prometheus sees it.
    stack.listener.close()
    wait_until(
        lambda: scalar(base, 'vaktpost_check_status{check="loopback-listener"}') == 2.0,
        20,
        "the tcp check critical in Prometheus",
    )
    assert scalar(base, 'vaktpost_check_up{check="loopback-listener"}') == 0.0


def test_alert_rules_evaluate_cleanly_on_real_agent_metrics(stack: Stack) -> None:
    def all_rules_evaluated() -> list[dict[str, Any]] | None:
        with urllib.request.urlopen(stack.prometheus + "/api/v1/rules", timeout=5) as response:
            groups = json.loads(response.read())["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return (
            rules
            if rules and all(r.get("lastEvaluation", "0001").startswith("2") for r in rules)
            else None
        )

    rules = wait_until(all_rules_evaluated, 20, "every rule evaluated once")
    bad = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not bad
    assert {r["name"] for r in rules} >= {"VaktpostAgentDown", "VaktpostDepartmentRTOBreached"}


def test_every_dashboard_query_runs_on_real_prometheus(stack: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    wait_until(lambda: scalar(stack.prometheus, 'up{job="vaktpost"}') == 1.0, 20, "a scrape")
    for expr in dashboard_exprs(dashboard):
        if expr.startswith("label_values("):
            metric = re.match(r"label_values\((\w+)", expr)
            assert metric, expr
            expr = metric.group(1)
        promql = (
            expr.replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$department", ".*")
        )
        answer = query(stack.prometheus, promql)
        assert answer["status"] == "success", (expr, answer)
