"""Membership: agents on one real PostgreSQL publish themselves in fleet_agents and
see each other (GET /api/v1/fleet, `vaktpost fleet status`, /metrics); a lapsed
agent, two live agents with one name and a config that differs are reported; a
kill -9 and restart under the same name is not a duplicate."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.fleet_component import config_hash, duplicate_names
from tests.agent.state.pg_fixtures import PgServer
from tests.fleet.fleet_agents import agent_config
from tests.helpers import AgentProcess, free_port, vaktpost_cmd, wait_until

LEASE = 3.0

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  fleet: {{lease: {lease}s}}
  defaults: {{interval: 1s, timeout: 0.5s}}
checks:
  - {{name: up, type: tcp, host: 127.0.0.1, port: 9}}  # the same in every agent's config
{extra}
"""


def start(tmp: Path, dsn: str, name: str, *, tag: str = "", extra: str = "") -> AgentProcess:
    cfg, port = agent_config(tmp, name, CONFIG, tag=tag, dsn=dsn, lease=LEASE, extra=extra)
    agent = AgentProcess(cfg, port=port)
    agent.wait_ready()
    return agent


def fleet(agent: AgentProcess) -> dict[str, Any]:
    status, body = agent.get("/api/v1/fleet")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


def live_names(doc: dict[str, Any]) -> list[str]:
    return sorted(a["name"] for a in doc["agents"] if a["live"])


def metric(agent: AgentProcess, line_start: str) -> float | None:
    for line in agent.get("/metrics")[1].decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def fleet_cli(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vaktpost_cmd("fleet", "status", "--url", agent.base, *args),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_three_agents_see_each_other_and_a_killed_one_lapses(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    agents = {n: start(tmp_path, dsn, n) for n in ("srv-a", "srv-b", "srv-c")}
    try:
        a = agents["srv-a"]
        wait_until(
            lambda: live_names(fleet(a)) == ["srv-a", "srv-b", "srv-c"],
            timeout=15,
            what="three live agents",
        )
        doc = fleet(a)
        assert doc["problems"] == [] and doc["duplicate_names"] == []
        assert all(x["config_matches"] for x in doc["agents"]), "same config, other names"
        assert [x["name"] for x in doc["agents"] if x["self"]] == ["srv-a"]
        wait_until(
            lambda: sum(x["checks_assigned"] for x in fleet(a)["agents"]) == 1,
            timeout=15,
            what="the one check assigned to exactly one agent",
        )
        doc = fleet(a)
        runner = next(x["name"] for x in doc["agents"] if x["checks_assigned"] == 1)
        assert doc["store"]["kind"] == "postgresql" and doc["store"]["up"]
        assert metric(a, "vaktpost_fleet_agents_up") == 3
        assert metric(a, f'vaktpost_fleet_checks_assigned{{agent="{runner}"}}') == 1
        assert metric(a, "vaktpost_fleet_config_mismatch") == 0

        out = fleet_cli(a)
        assert out.returncode == 0, out.stderr
        assert "srv-a *" in out.stdout and "srv-c" in out.stdout, out.stdout
        as_json = json.loads(fleet_cli(a, "--format", "json").stdout)
        assert live_names(as_json) == ["srv-a", "srv-b", "srv-c"]

        # kill -9 and at once a new process under the same name: a restart, not a duplicate.
        agents["srv-c"].proc.send_signal(signal.SIGKILL)
        agents["srv-c"].proc.wait()
        agents["srv-c"] = start(tmp_path, dsn, "srv-c", tag="-2")
        wait_until(
            lambda: sum(1 for x in fleet(a)["agents"] if x["name"] == "srv-c") == 2,
            timeout=15,
            what="the new srv-c row",
        )
        deadline = time.monotonic() + 2 * LEASE
        while time.monotonic() < deadline:  # both renewals of the new process seen
            assert fleet(a)["duplicate_names"] == [], "a restart is not a duplicate name"
            time.sleep(0.5)

        # kill -9 for good: srv-c lapses within the lease (plus one renewal period).
        agents["srv-c"].proc.send_signal(signal.SIGKILL)
        agents["srv-c"].proc.wait()
        killed = time.monotonic()
        wait_until(
            lambda: live_names(fleet(a)) == ["srv-a", "srv-b"], timeout=LEASE + 5, what="lapse"
        )
        assert time.monotonic() - killed <= LEASE + 2
        assert metric(a, 'vaktpost_fleet_agent_up{agent="srv-c"}') == 0
        assert metric(a, "vaktpost_fleet_agents_up") == 2

        # A clean stop leaves the fleet at once.
        agents["srv-b"].stop()
        wait_until(
            lambda: "srv-b" not in {x["name"] for x in fleet(a)["agents"]},
            timeout=LEASE,
            what="srv-b's row removed at its stop",
        )
    finally:
        for agent in agents.values():
            agent.stop()


def test_duplicate_names_and_a_different_config_are_reported(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    other = "  - {name: extra, type: tcp, host: 127.0.0.1, port: 9}"
    first = start(tmp_path, dsn, "srv-a")
    agents = [first]
    try:
        agents.append(start(tmp_path, dsn, "srv-a", tag="-twin"))
        agents.append(start(tmp_path, dsn, "srv-b", extra=other))
        wait_until(
            lambda: fleet(first)["duplicate_names"] == ["srv-a"],
            timeout=3 * LEASE,
            what="the duplicate name reported",
        )
        wait_until(
            lambda: fleet(first)["config_mismatch"] == ["srv-b"],
            timeout=3 * LEASE,
            what="srv-b's config reported",
        )
        doc = fleet(first)
        assert "two live agents are named srv-a" in doc["problems"]
        assert "srv-b runs a different config" in doc["problems"]
        assert len([x for x in doc["agents"] if x["name"] == "srv-a" and x["live"]]) == 2
        assert metric(first, "vaktpost_fleet_duplicate_names") == 1
        assert metric(first, "vaktpost_fleet_config_mismatch") == 1
        # srv-b sees both srv-a as differing from its own config.
        assert fleet(agents[2])["config_mismatch"] == ["srv-a"]
        out = fleet_cli(first)
        assert out.returncode == 1 and "problem: two live agents are named srv-a" in out.stdout
        wait_until(
            lambda: any(
                r.get("msg", "").startswith("two live agents share a name")
                for r in first.log_records()
            ),
            timeout=5,
            what="the duplicate logged",
        )
    finally:
        for agent in agents:
            agent.stop()


def test_an_agent_alone_is_a_fleet_of_one(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "alone.yaml"
    cfg.write_text(
        f"agent: {{name: solo, listen: '127.0.0.1:{port}', state_dir: '{tmp_path / 's'}'}}\n"
    )
    with AgentProcess(cfg, port=port) as agent:
        agent.wait_ready()
        doc = fleet(agent)
        assert doc["store"] == {"kind": "sqlite", "where": None, "up": True}
        assert live_names(doc) == ["solo"] and doc["engine"]["holder"] == "solo"
        assert metric(agent, 'vaktpost_fleet_engine_holder{agent="solo"}') == 1


def test_the_config_hash_ignores_what_differs_between_agents_by_design() -> None:
    def cfg(name: str, port: int, checks: list[dict[str, Any]]) -> Config:
        return Config.model_validate(
            {
                "agent": {"name": name, "listen": f"127.0.0.1:{port}", "state_dir": f"/s/{name}"},
                "checks": checks,
            }
        )

    check = {"name": "web", "type": "tcp", "host": "127.0.0.1", "port": 80}
    assert config_hash(cfg("a", 1, [check])) == config_hash(cfg("b", 2, [check]))
    assert config_hash(cfg("a", 1, [check])) != config_hash(cfg("a", 1, [{**check, "port": 81}]))


def test_a_restart_is_not_a_duplicate_but_two_renewing_processes_are() -> None:
    old = {"name": "a", "live": True, "started_at": 0.0, "seen_at": 9.0}
    restarted = {"name": "a", "live": True, "started_at": 10.0, "seen_at": 11.0}
    assert duplicate_names([old, restarted]) == []
    assert duplicate_names([{**old, "seen_at": 10.5}, restarted]) == ["a"]
    assert duplicate_names([{**old, "live": False, "seen_at": 10.5}, restarted]) == []
