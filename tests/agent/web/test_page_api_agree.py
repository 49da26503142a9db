"""The status page, /readiness, /api/v1/departments and the metrics tell one story.

Seen: a department whose RTO was breached read `degraded` on the page and on
/readiness (their report lacked the engine's extras) while the API and
`vaktpost_department_state` said `rto_breached`; and a system whose checks
were all `unreachable` read "Uppe: ja".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.configload import load_config_text
from agent.readiness import merge_extras, report
from checks.base import CheckResult, Status
from tests.alerting_fixtures import TcpTarget, http_get, metric_value
from tests.helpers import daemon, free_port, wait_until

CONFIG = """
agent:
  name: agree
  language: sv
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 200ms, timeout: 1s}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {closed}, failures_before_alert: 1}}
  - {{name: switch, type: tcp, host: 127.0.0.1, port: {closed}, failures_before_alert: 1}}
  - {{name: alarm, type: tcp, host: 127.0.0.1, port: {closed}, failures_before_alert: 1,
      depends_on: [switch]}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - {{id: case, name: Treserva, checks: [web], rto: 1s, mtpd: 1h}}
    escalation:
      - {{after: 0m, notify: [log]}}
  - id: it
    name: IT
    systems:
      - {{id: core, name: Kärnswitch, checks: [switch]}}
    escalation:
      - {{after: 0m, notify: [log]}}
  - id: care
    name: Omsorg
    systems:
      - {{id: alarms, name: Trygghetslarm, checks: [alarm], rto: 1h, mtpd: 2h}}
    escalation:
      - {{after: 0m, notify: [log]}}
"""


def dept_section(page: str, name: str) -> str:
    """The part of a page about one department (its <section>)."""
    for part in page.split("<section")[1:]:
        if re.search(rf"<h2>{re.escape(name)} –", part):
            return part.split("</section>")[0]
    raise AssertionError(f"no section for {name} in {page[:2000]}")


def system_row(section: str, system: str) -> str:
    match = re.search(rf'<tr data-system="{re.escape(system)}"[^>]*>', section)
    assert match is not None, section
    return match.group(0)


def systems_of(doc: dict[str, Any], dept: str) -> dict[str, dict[str, Any]]:
    found = next(d for d in doc["departments"] if d["id"] == dept)
    return {s["id"]: s for s in found["systems"]}


class Agent:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> str:
        status, body = http_get(self.base + path, timeout=5)
        assert status == 200, (path, status, body)
        return body

    def departments(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/api/v1/departments")))

    def state_of(self, dept: str) -> str:
        found = next(d for d in self.departments()["departments"] if d["id"] == dept)
        return str(found["state"])

    def check_status(self, name: str) -> str | None:
        checks = json.loads(self.get("/api/v1/checks"))["checks"]
        return next((c["status"] for c in checks if c["name"] == name), None)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    closed = TcpTarget()  # bound, never listening: connects are refused at once
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(port=port, state=tmp_path / "s", closed=closed.port))
    log = tmp_path / "daemon.log"
    with daemon(cfg, log) as proc:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            return http_get(base + "/readyz")[0] == 200

        wait_until(ready, 15, "the agent to be ready")
        yield Agent(base)
        assert proc.poll() is None, log.read_text()[-3000:]


def test_rto_breach_reads_the_same_on_page_readiness_api_and_metric(agent: Agent) -> None:
    wait_until(lambda: agent.state_of("social") == "rto_breached", 15, "the RTO of 1s to pass")
    # The state only moves on at the MTPD (1 h): every reader must now say rto_breached.
    metrics = agent.get("/metrics")
    assert metric_value(metrics, 'vaktpost_department_state{department="social"}') == 2.0
    assert agent.state_of("social") == "rto_breached"
    for path in ("/", "/readiness", "/readiness?department=social"):
        section = dept_section(agent.get(path), "Socialtjänsten")
        assert '<p data-state="rto_breached">läge: RTO överskriden</p>' in section, (path, section)
        assert 'data-up="false"' in system_row(section, "case"), path
    assert systems_of(agent.departments(), "social")["case"]["up"] is False


def test_a_system_down_only_through_unreachable_checks_is_down_everywhere(agent: Agent) -> None:
    wait_until(lambda: agent.check_status("alarm") == "unreachable", 15, "alarm to be unreachable")
    wait_until(lambda: agent.check_status("switch") == "critical", 15, "the switch to be down")

    def alarms_down() -> dict[str, Any] | None:
        d = agent.departments()
        return d if systems_of(d, "care")["alarms"]["up"] is False else None

    doc = wait_until(alarms_down, 15, "the engine to count alarms as down")
    assert next(d for d in doc["departments"] if d["id"] == "care")["state"] != "normal"
    metrics = agent.get("/metrics")
    assert metric_value(metrics, 'vaktpost_system_up{department="care",system="alarms"}') == 0.0
    assert metric_value(metrics, 'vaktpost_department_state{department="care"}') == 1.0
    for path in ("/", "/readiness?department=care"):
        section = dept_section(agent.get(path), "Omsorg")
        row = system_row(section, "alarms")
        assert 'data-up="false"' in row, (path, section)
        assert '<td class="bad">nej</td>' in section.split(row)[1].split("</tr>")[0]
        assert '<p data-state="degraded">läge: nedsatt</p>' in section


# -- without an engine (the CLI's `vaktpost readiness`) -------------------------------
SMALL = """
agent: {state_dir: /nonexistent}
checks:
  - {name: switch, type: tcp, host: 127.0.0.1, port: 9}
  - {name: alarm, type: tcp, host: 127.0.0.1, port: 9, depends_on: [switch]}
departments:
  - id: care
    systems:
      - {id: alarms, checks: [alarm]}
"""


def test_from_results_alone_an_unreachable_system_is_down() -> None:
    config = load_config_text(SMALL, "small.yaml")
    results = {"alarm": CheckResult(Status.UNREACHABLE, "depends on switch", {}, 0.0, 1.0)}
    doc = report(config, results, 2.0)
    assert systems_of(doc, "care")["alarms"]["up"] is False
    assert doc["departments"][0]["state"] == "degraded"
    ok = report(config, {"alarm": CheckResult(Status.OK, "fine", {}, 0.0, 1.0)}, 2.0)
    assert systems_of(ok, "care")["alarms"]["up"] is True


def test_engine_extras_override_state_and_each_systems_up() -> None:
    config = load_config_text(SMALL, "small.yaml")
    results = {"alarm": CheckResult(Status.OK, "fine", {}, 0.0, 1.0)}
    extras = {"care": {"state": "mtpd_breached", "systems": {"alarms": {"up": False}}}}
    doc = merge_extras(report(config, results, 2.0), [extras])
    care = doc["departments"][0]
    assert care["state"] == "mtpd_breached" and "systems" in care
    assert systems_of(doc, "care")["alarms"]["up"] is False
    assert systems_of(doc, "care")["alarms"]["ready"] is True  # the rest is kept
