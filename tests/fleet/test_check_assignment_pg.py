"""Check assignment on one real PostgreSQL: three `vaktpost run` processes split the
checks (each runs on exactly one agent), a pinned check runs on its agent, a kill -9
moves the killed agent's checks within one lease plus one interval and opens its
incident, and a pinned check whose agent is gone is unknown with the reason."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.state.pg_fixtures import PgServer
from tests.fleet.fleet_agents import agent_config
from tests.helpers import AgentProcess, wait_until

LEASE = 3.0
INTERVAL = 1.0
NAMES = ("srv-a", "srv-b", "srv-c")
CHECKS = [f"c{i:02d}" for i in range(24)]

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  fleet: {{lease: {lease}s}}
  defaults: {{interval: {interval}s, timeout: 0.5s, failures_before_alert: 1}}
channels:
  log: {{type: log, default: true}}
checks:
{checks}
  - {{name: pin-b, type: tcp, host: 127.0.0.1, port: {open}, run_on: [srv-b]}}
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that accepts: every check passes, so only assignment is under test."""
    with socket.create_server(("127.0.0.1", 0), backlog=256) as server:

        def accept_forever() -> None:
            with contextlib.suppress(OSError):  # closed at the end of the test
                while True:
                    conn, _ = server.accept()
                    conn.close()

        threading.Thread(target=accept_forever, daemon=True).start()
        yield server.getsockname()[1]


def start(tmp: Path, dsn: str, name: str, port_open: int) -> AgentProcess:
    checks = "\n".join(
        f"  - {{name: {c}, type: tcp, host: 127.0.0.1, port: {port_open}}}" for c in CHECKS
    )
    cfg, port = agent_config(
        tmp, name, CONFIG, dsn=dsn, lease=LEASE, interval=INTERVAL, checks=checks, open=port_open
    )
    agent = AgentProcess(cfg, tmp / f"{name}-{time.monotonic_ns()}.log", port=port)
    agent.wait_ready()
    return agent


def runs(agent: AgentProcess) -> dict[str, float]:
    """Probes this agent ran itself, per check (the book counts only its own runs)."""
    out: dict[str, float] = {}
    for line in agent.get("/metrics")[1].decode().splitlines():
        if line.startswith("vaktpost_check_runs_total{"):
            check = line.split('check="', 1)[1].split('"', 1)[0]
            out[check] = out.get(check, 0.0) + float(line.split()[-1])
    return out


def ran_between(agents: dict[str, AgentProcess], window: float) -> dict[str, set[str]]:
    """check -> the agents that probed it during `window` seconds."""
    before = {n: runs(a) for n, a in agents.items()}
    time.sleep(window)  # a measuring window, not a wait for state
    after = {n: runs(a) for n, a in agents.items()}
    out: dict[str, set[str]] = {c: set() for c in [*CHECKS, "pin-b"]}
    for n in agents:
        for check, count in after[n].items():
            if count > before[n].get(check, 0.0) and check in out:
                out[check].add(n)
    return out


def checks_json(agent: AgentProcess) -> dict[str, dict[str, Any]]:
    status, body = agent.get("/api/v1/checks")
    assert status == 200, body
    return {c["name"]: c for c in json.loads(body)["checks"]}


def holder(agent: AgentProcess) -> str | None:
    doc = json.loads(agent.get("/api/v1/fleet")[1])
    name: str | None = doc["engine"]["holder"]
    return name


def open_incident_systems(agent: AgentProcess) -> set[str]:
    status, body = agent.get("/api/v1/incidents?state=open")
    assert status == 200, body
    return {i["system"] for i in json.loads(body)["incidents"]}


def test_three_agents_split_the_checks_and_a_killed_ones_move(
    tmp_path: Path, pg_server: PgServer, listener: int
) -> None:
    dsn = pg_server.new_database()
    agents = {n: start(tmp_path, dsn, n, listener) for n in NAMES}
    try:
        # Steady state: every check probed by exactly one agent, the pinned one by srv-b.
        def split() -> bool:
            seen = ran_between(agents, 2.5 * INTERVAL)
            return all(len(v) == 1 for v in seen.values())

        wait_until(split, timeout=30, what="every check probed by exactly one agent")
        seen = ran_between(agents, 2.5 * INTERVAL)
        assert all(len(v) == 1 for v in seen.values()), seen
        assert seen["pin-b"] == {"srv-b"}
        owned = {n: {c for c, v in seen.items() if v == {n}} for n in NAMES}
        assert all(owned[n] for n in NAMES), f"an even split gives each agent some: {owned}"

        # Every agent shows the whole fleet, each result with the agent that ran it.
        view = checks_json(agents["srv-a"])
        assert set(view) >= {*CHECKS, "pin-b"}
        for check, (runner,) in ((c, tuple(v)) for c, v in seen.items()):
            assert view[check]["agent"] == runner, (check, view[check])
            assert view[check]["status"] == "ok"

        # kill -9 of an agent without the engine lease (not srv-b, whose pinned check
        # comes later): its checks move within one lease plus one interval.
        engine = holder(agents["srv-a"])
        assert engine in NAMES
        victim = next(n for n in ("srv-a", "srv-c") if n != engine)
        moved = owned[victim]
        survivors = {n: a for n, a in agents.items() if n != victim}
        base = {n: runs(a) for n, a in survivors.items()}
        agents[victim].proc.send_signal(signal.SIGKILL)
        agents[victim].proc.wait()
        killed_at = time.monotonic()

        def taken_over() -> bool:
            now = {n: runs(a) for n, a in survivors.items()}
            return all(
                any(now[n].get(c, 0.0) > base[n].get(c, 0.0) for n in survivors) for c in moved
            )

        wait_until(taken_over, timeout=20, what="the killed agent's checks probed by the others")
        took = time.monotonic() - killed_at
        # The bound is lease + interval; 2 s more for this shared, noisy machine.
        assert took <= LEASE + INTERVAL + 2.0, f"moved after {took:.1f} s"

        # It lapsed: an incident on the default ladder, opened by the engine holder.
        pseudo = f"fleet-agent-{victim}"
        wait_until(
            lambda: pseudo in open_incident_systems(survivors[engine]),
            timeout=15,
            what="the incident of the lapsed agent",
        )
        # The agent without the engine lease shows it too (it follows the holder's state).
        wait_until(
            lambda: all(pseudo in open_incident_systems(a) for a in survivors.values()),
            timeout=10,
            what="both survivors showing the incident",
        )

        # kill -9 of srv-b: the pinned check has no live agent and says why.
        other = next(n for n in survivors if n != "srv-b")
        agents["srv-b"].proc.send_signal(signal.SIGKILL)
        agents["srv-b"].proc.wait()
        wait_until(
            lambda: checks_json(agents[other])["pin-b"]["status"] == "unknown",
            timeout=20,
            what="pin-b unknown once srv-b lapsed",
        )
        pin = checks_json(agents[other])["pin-b"]
        assert pin["message"] == "no live agent may run it: srv-b is down", pin
        assert pin["agent"] is None

        # The first victim returns: its incident resolves and it takes checks again.
        agents[victim] = start(tmp_path, dsn, victim, listener)
        wait_until(
            lambda: pseudo not in open_incident_systems(agents[other]),
            timeout=25,
            what="the returned agent's incident resolved",
        )
        wait_until(
            lambda: any(ran_between({victim: agents[victim]}, 2 * INTERVAL).values()),
            timeout=20,
            what="the returned agent running checks again",
        )
    finally:
        for agent in agents.values():
            agent.stop()
