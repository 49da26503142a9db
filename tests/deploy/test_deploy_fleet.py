"""deploy/fleet/: the compose file (services, mounts, the agents' one config), its
Prometheus and Alertmanager configs in the containers' layout, the fleet alert rules
under promtool, and the dashboard's fleet row. Nothing here runs a container."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.configload import load_config_text
from agent.fleet_component import config_hash
from tests.deploy.test_deploy import dashboard_exprs, documented_metric_names
from tests.helpers import ROOT, VAKTPOST, require_binary

FLEET = ROOT / "deploy" / "fleet"
PROM_DIR = ROOT / "deploy" / "prometheus"
RULES = PROM_DIR / "vaktpost-fleet-rules.yml"
RULE_TESTS = PROM_DIR / "vaktpost-fleet-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "vaktpost-dashboard.json"
AGENTS = ["agent-1", "agent-2", "agent-3"]
AGENT_CONFIG = "/etc/vaktpost/fleet/vaktpost.yaml"


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((FLEET / "compose.yaml").read_text(encoding="utf-8"))
    return doc


def bind_mounts(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path, read-only) for each bind mount (short syntax)."""
    mounts: dict[str, tuple[Path, bool]] = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            mounts[target] = ((FLEET / source).resolve(), mode == ["ro"])
    return mounts


def container_dir(service: dict[str, Any], directory: str, into: Path) -> Path:
    """Lay out the files a service sees under `directory`, as its mounts put them."""
    for target, (source, _) in bind_mounts(service).items():
        if target.startswith(directory + "/"):
            dest = into / target.removeprefix(directory + "/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, dest)
    return into


def agent_env(service: dict[str, Any], secrets: Path) -> dict[str, str]:
    """The agent's environment, with its compose secrets under `secrets` instead of
    /run/secrets (where the config finds them through VAKTPOST_SECRETS)."""
    secrets.mkdir(exist_ok=True)
    for name in service["secrets"]:
        shutil.copy(FLEET / compose()["secrets"][name]["file"], secrets / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAKTPOST_")}
    return {**env, **service["environment"], "VAKTPOST_SECRETS": str(secrets)}


# -- the compose file -------------------------------------------------------------------
def test_compose_names_the_database_three_agents_prometheus_and_an_alertmanager_pair() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", *AGENTS, "prometheus", "alertmanager-1", "alertmanager-2"}
    names = [services[a]["environment"]["VAKTPOST_AGENT_NAME"] for a in AGENTS]
    assert names == AGENTS, "each agent its own agent.name"
    for a in AGENTS:
        agent = services[a]
        assert agent["build"] == {"context": "../..", "dockerfile": "deploy/Containerfile"}
        assert agent["command"] == ["run", "-c", AGENT_CONFIG]
        assert bind_mounts(agent)[AGENT_CONFIG] == ((FLEET / "vaktpost.yaml").resolve(), True)
        assert agent["depends_on"]["postgres"] == {"condition": "service_healthy"}
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_pass"
    assert "pg_isready" in pg["healthcheck"]["test"]


def test_the_alertmanagers_peer_with_each_other() -> None:
    services = compose()["services"]
    for me, other in (("alertmanager-1", "alertmanager-2"), ("alertmanager-2", "alertmanager-1")):
        flags = services[me]["command"]
        assert f"--cluster.peer={other}:9094" in flags
        assert "--cluster.listen-address=0.0.0.0:9094" in flags


def test_every_file_the_compose_file_uses_exists_in_the_repository() -> None:
    doc = compose()
    used: list[Path] = []
    for service in doc["services"].values():
        used += [source for source, _ in bind_mounts(service).values()]
        named = [
            v.split(":")[0] for v in service.get("volumes", []) if not v.startswith((".", "/"))
        ]
        assert set(named) <= set(doc["volumes"]), f"undeclared volumes: {named}"
        if "build" in service:
            context = (FLEET / service["build"]["context"]).resolve()
            used += [context, context / service["build"]["dockerfile"]]
    used += [(FLEET / s["file"]).resolve() for s in doc["secrets"].values()]
    assert len(used) >= 10
    missing = [str(p) for p in used if not p.exists()]
    assert not missing, missing


def test_the_container_image_holds_every_package_the_project_installs() -> None:
    """`pip install .` in the Containerfile fails when a package directory is not copied."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    top = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    text = (ROOT / "deploy" / "Containerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert top <= copied, f"not copied into the build stage: {sorted(top - copied)}"


# -- the agents' config -----------------------------------------------------------------
def test_the_fleet_config_validates_for_every_agent(tmp_path: Path) -> None:
    services = compose()["services"]
    for a in AGENTS:
        env = agent_env(services[a], tmp_path / "secrets")
        config = bind_mounts(services[a])[AGENT_CONFIG][0]
        done = run([*VAKTPOST, "validate", "-c", str(config)], cwd=ROOT, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok (7 checks, 2 channels, 1 departments)" in done.stdout


def test_the_three_agents_share_one_config_hash_and_the_store(tmp_path: Path) -> None:
    services = compose()["services"]
    text = (FLEET / "vaktpost.yaml").read_text(encoding="utf-8")
    hashes, names = set(), []
    for a in AGENTS:
        env = agent_env(services[a], tmp_path / "secrets")
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            config = load_config_text(text, "vaktpost.yaml")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        hashes.add(config_hash(config))
        names.append(config.agent.name)
        assert config.agent.store is not None and config.agent.store.startswith("postgresql://")
        assert "@postgres:5432/vaktpost" in config.agent.store
        assert config.agent.listen.endswith(":9730")
    assert names == AGENTS
    assert len(hashes) == 1, "the config hash differs between the agents: a mismatch alarm"


# -- Prometheus and Alertmanager, as their containers see their files ------------------------
def test_prometheus_config_loads_both_rule_files_and_scrapes_every_agent(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    service = compose()["services"]["prometheus"]
    etc = container_dir(service, "/etc/prometheus", tmp_path)
    done = run([promtool, "check", "config", "prometheus.yml"], cwd=etc)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout
    prom = yaml.safe_load((etc / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "vaktpost-fleet")
    [static] = job["static_configs"]
    assert static["targets"] == [f"{a}:9730" for a in AGENTS]
    assert static["labels"]["fleet"], "the fleet rules count the targets with this label"
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager-1:9093", "alertmanager-2:9093"]


def test_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    for name in ("alertmanager-1", "alertmanager-2"):
        etc = container_dir(compose()["services"][name], "/etc/alertmanager", tmp_path / name)
        done = run([amtool, "check-config", "alertmanager.yml"], cwd=etc)
        assert done.returncode == 0, done.stdout + done.stderr


# -- the fleet's alert rules ----------------------------------------------------------------
def test_promtool_accepts_the_fleet_rules() -> None:
    promtool = require_binary("promtool")
    done = run([promtool, "check", "rules", RULES.name], cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_promtool_unit_tests_of_the_fleet_rules_pass() -> None:
    promtool = require_binary("promtool")
    done = run([promtool, "test", "rules", RULE_TESTS.name], cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_fleet_alert_is_tested_firing_and_not_firing() -> None:
    rules = RULES.read_text(encoding="utf-8")
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    alerts = set(re.findall(r"^\s*- alert: (\w+)", rules, re.M))
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts == {
        "VaktpostFleetAgentsMissing",
        "VaktpostFleetAgentLapsed",
        "VaktpostFleetNoAgentUp",
        "VaktpostFleetNoEngineHolder",
        "VaktpostFleetEngineHolderFlapping",
        "VaktpostStoreDown",
        "VaktpostFleetStoreDownEverywhere",
        "VaktpostFleetConfigMismatch",
        "VaktpostFleetDuplicateNames",
    }
    assert alerts - {"VaktpostStoreDown"} <= fired & quiet, sorted(alerts - (fired & quiet))
    assert "VaktpostStoreDown" in fired


def test_fleet_rules_use_only_documented_metrics() -> None:
    used = set(re.findall(r"\bvaktpost_[a-z_]+", RULES.read_text(encoding="utf-8")))
    assert {
        "vaktpost_fleet_agents_up",
        "vaktpost_fleet_agent_up",
        "vaktpost_fleet_engine_holder",
        "vaktpost_fleet_engine_token",
        "vaktpost_fleet_config_mismatch",
        "vaktpost_fleet_duplicate_names",
        "vaktpost_store_up",
    } <= used
    assert used <= documented_metric_names(), sorted(used - documented_metric_names())


# -- the dashboard's fleet row ---------------------------------------------------------------
def fleet_row() -> list[dict[str, Any]]:
    """The panels between the row titled Flotta and the next row (or the end)."""
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and "Flotta" in p["title"])
    rest = panels[start + 1 :]
    end = next((i for i, p in enumerate(rest) if p["type"] == "row"), len(rest))
    return rest[:end]


def test_the_dashboard_has_a_fleet_row_with_agents_holder_store_and_config() -> None:
    row = fleet_row()
    used = {m for e in dashboard_exprs(row) for m in re.findall(r"\bvaktpost_[a-z_]+", e)}
    assert {
        "vaktpost_fleet_agents_up",
        "vaktpost_fleet_engine_token",
        "vaktpost_fleet_engine_holder",
        "vaktpost_store_up",
        "vaktpost_fleet_config_mismatch",
    } <= used
    top = min(p["gridPos"]["y"] for p in row)
    others = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    above = [p for p in others if p not in row and p["gridPos"]["y"] >= top and p["type"] != "row"]
    assert not above, "the fleet row's panels overlap others"


@pytest.mark.parametrize(
    ("title", "series", "expected"),
    [
        # Three takeovers in the hour; an agent's first scrape before its first look said 0.
        (
            "Byten av motorinnehavare (senaste timmen)",
            {
                'vaktpost_fleet_engine_token{job="vaktpost-fleet", fleet="k", instance="a"}': (
                    "0 5 5 6 7 8 8"
                ),
                'vaktpost_fleet_engine_token{job="vaktpost-fleet", fleet="k", instance="b"}': (
                    "5 5 5 6 7 8 8"
                ),
            },
            {'{fleet="k"}': "3"},
        ),
        # srv-c lapsed; a lone agent without the fleet label is not on the row.
        (
            "Agenter i flottan: levande / skrapade",
            {
                'vaktpost_fleet_agents_up{job="vaktpost-fleet", fleet="k", instance="a"}': "2x6",
                'vaktpost_fleet_agents_up{job="vaktpost-fleet", fleet="k", instance="b"}': "2x6",
                'vaktpost_fleet_agents_up{job="vaktpost", instance="solo"}': "1x6",
            },
            {'{fleet="k"}': "2"},
        ),
    ],
)
def test_fleet_panels_compute_what_they_say(
    tmp_path: Path, title: str, series: dict[str, str], expected: dict[str, str]
) -> None:
    promtool = require_binary("promtool")
    panel = next(p for p in fleet_row() if p["title"] == title)
    expr = panel["targets"][0]["expr"].replace(', instance=~"$instance"', "")
    assert "$" not in expr, expr
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(
            {"groups": [{"name": "panel", "rules": [{"record": "panel:value", "expr": expr}]}]}
        )
    )
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "10m",
        "tests": [
            {
                "interval": "10m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": "panel:value",
                        "eval_time": "60m",
                        "exp_samples": [
                            {"labels": f"panel:value{labels}", "value": float(value)}
                            for labels, value in expected.items()
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests))
    done = run([promtool, "test", "rules", "test.yml"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
