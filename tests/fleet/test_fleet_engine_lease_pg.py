"""The engine lease: three `vaktpost run` on one real PostgreSQL, exactly one runs the
engine; kill -9 of the holder: another takes the lease within lease + 2 s and the
ladder continues on its clock, each step delivered once."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver
from tests.fleet.fleet_agents import agent_config
from tests.helpers import AgentProcess, free_port, wait_until

LEASE = 3.0
SPACING = 8.0  # seconds between ladder steps: longer than a takeover

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  fleet: {{lease: {lease}s}}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  hook: {{type: webhook, url: "{hook}", concurrency: 1}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: {s1}s, notify: [hook]}}
      - {{after: {s2}s, notify: [hook]}}
"""


def fleet(agent: AgentProcess) -> dict[str, Any]:
    status, body = agent.get("/api/v1/fleet")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


def step_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


def test_one_holder_and_a_killed_holder_is_replaced_on_the_ladders_clock(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    closed = free_port()
    agents: dict[str, AgentProcess] = {}
    with ThreadedReceiver() as receiver:
        try:
            for name in ("srv-a", "srv-b", "srv-c"):
                cfg, port = agent_config(
                    tmp_path, name, CONFIG, dsn=dsn, lease=LEASE, hook=receiver.url,
                    closed=closed, s1=SPACING, s2=2 * SPACING,
                )  # fmt: skip
                agents[name] = AgentProcess(cfg, port=port)
            for agent in agents.values():
                agent.wait_ready()

            def holders() -> set[str | None]:
                return {fleet(a)["engine"]["holder"] for a in agents.values()}

            wait_until(lambda: len(holders()) == 1 and None not in holders(), 15, "one holder")
            wait_until(lambda: receiver.dedup_keys(), timeout=20, what="step 0 delivered")
            holder = next(iter(holders()))
            assert holder is not None
            metrics = agents[holder].get("/metrics")[1].decode()
            assert f'vaktpost_fleet_engine_holder{{agent="{holder}"}} 1.0' in metrics
            for name, agent in agents.items():
                took = [r for r in agent.log_records() if r.get("msg") == "took the engine lease"]
                assert len(took) == (1 if name == holder else 0), (name, holder)

            agents[holder].proc.send_signal(signal.SIGKILL)
            agents[holder].proc.wait()
            killed = time.monotonic()
            rest = {n: a for n, a in agents.items() if n != holder}

            def new_holder() -> str | None:
                names = {fleet(a)["engine"]["holder"] for a in rest.values()}
                return names.pop() if len(names) == 1 else None

            wait_until(lambda: new_holder() not in (None, holder), LEASE + 4, "a new holder")
            took_over = [
                n
                for n, a in rest.items()
                if any(r.get("msg") == "took the engine lease" for r in a.log_records())
            ]
            assert took_over == [new_holder()], "exactly one agent took over"
            assert time.monotonic() - killed <= LEASE + 2 + 2, "taken over within lease + 2 s"
            wait_until(
                lambda: {step_of(k) for k in receiver.dedup_keys()} >= {0, 1, 2},
                timeout=3 * SPACING,
                what="steps 1 and 2",
            )
        finally:
            for agent in agents.values():
                agent.stop()
        arrivals = {step_of(k): t for t, k in receiver.arrivals}
        steps = Counter(step_of(k) for k in receiver.dedup_keys())
    assert steps == {0: 1, 1: 1, 2: 1}, f"each step once: {receiver.dedup_keys()}"
    for step in (1, 2):
        late = arrivals[step] - arrivals[0] - step * SPACING
        assert -0.6 <= late <= 2.5, f"step {step} {late:+.1f}s off its clock"
