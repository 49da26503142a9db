"""Backup age against RPO per department and system: the metric that joins them, and
the dashboard's expression evaluated by promtool on series the test writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from agent.configload import load_config_text
from agent.readiness_component import ReadinessComponent
from agent.results import ResultBook
from tests.helpers import ROOT, require_binary

DASHBOARD = ROOT / "deploy" / "grafana" / "vaktpost-dashboard.json"

CONFIG = """
agent: {state_dir: /nonexistent}
checks:
  - {name: nightly, type: backup_files, path: /nonexistent/*.tar}
  - {name: weekly, type: backup_files, path: /nonexistent/*.tgz}
departments:
  - id: water
    systems:
      - id: scada
        backups: [{check: nightly, rpo: 24h}, {check: weekly, rpo: 8d}]
      - id: billing
        backups: [{check: nightly, rpo: 6h}]
      - id: portal
"""


def test_backup_rpo_seconds_names_department_system_and_check() -> None:
    config = load_config_text(CONFIG, "grafana.yaml")
    host = SimpleNamespace(config=config, book=ResultBook())
    registry = CollectorRegistry()
    for collector in ReadinessComponent(host).collectors():
        registry.register(collector)
    text = generate_latest(registry).decode()
    lines = sorted(line for line in text.splitlines() if line.startswith("vaktpost_backup_rpo"))
    assert lines == [
        'vaktpost_backup_rpo_seconds{check="nightly",department="water",system="billing"} 21600.0',
        'vaktpost_backup_rpo_seconds{check="nightly",department="water",system="scada"} 86400.0',
        'vaktpost_backup_rpo_seconds{check="weekly",department="water",system="scada"} 691200.0',
    ]


def panel(title: str) -> dict[str, object]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return next(p for p in dashboard["panels"] if p["title"] == title)


def test_dashboard_age_against_rpo_per_system(tmp_path: Path) -> None:
    """One check serving two systems with different RPOs: the ratio is per system."""
    promtool = require_binary("promtool")
    targets = panel("Säkerhetskopians ålder mot RPO")["targets"]
    assert isinstance(targets, list)
    expr = targets[0]["expr"].replace('{instance=~"$instance", department=~"$department"}', "")
    expr = expr.replace('{instance=~"$instance"}', "")
    assert "vaktpost_backup_rpo_seconds" in expr and "$" not in expr
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: panel\n    rules:\n"
        f"      - record: panel:age_over_rpo\n        expr: '{expr}'\n"
    )
    series = {
        'vaktpost_backup_age_seconds{job="vaktpost", instance="a", check="nightly"}': "43200",
        'vaktpost_backup_rpo_seconds{job="vaktpost", instance="a", department="water",'
        ' system="scada", check="nightly"}': "86400",
        'vaktpost_backup_rpo_seconds{job="vaktpost", instance="a", department="water",'
        ' system="billing", check="nightly"}': "21600",
        # the same check name on another agent must not be joined across agents
        'vaktpost_backup_age_seconds{job="vaktpost", instance="b", check="nightly"}': "10",
    }
    inputs = "".join(f"      - series: '{s}'\n        values: '{v}x5'\n" for s, v in series.items())
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        f"    input_series:\n{inputs}"
        "    promql_expr_test:\n      - expr: panel:age_over_rpo\n        eval_time: 2m\n"
        "        exp_samples:\n"
        '          - labels: \'panel:age_over_rpo{job="vaktpost", instance="a",'
        ' department="water", system="scada", check="nightly"}\'\n            value: 0.5\n'
        '          - labels: \'panel:age_over_rpo{job="vaktpost", instance="a",'
        ' department="water", system="billing", check="nightly"}\'\n            value: 2\n'
    )
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
