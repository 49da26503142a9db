"""PostgreSQL stopped (immediate) and started again mid-escalation, under two
`vaktpost run` agents: each agent sends one "state store unreachable" notice through
the channels it may deliver itself, probing never stops, /healthz, /metrics and the
status page answer from memory, a result gathered during the outage is written once
the store is back, and the ladder keeps its clock and its step count."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver
from tests.fleet.pg_restart import crash, own_pg, restart
from tests.helpers import AgentProcess, free_port, wait_until

__all__ = ["own_pg"]

LEASE = 3.0
STEP1 = 6.0  # due while the database is down: sent once it is back
STEP2 = 30.0  # due well after it is back: sent on the ladder's original clock

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  language: en
  fleet: {{lease: {lease}s}}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  hook: {{type: webhook, url: "{hook}", concurrency: 1}}
  ops: {{type: webhook, url: "{ops}", default: true}}
  modem: {{type: command, argv: [/bin/sh, -c, 'cat > "$(mktemp -p {modem})"'],
          default: true, run_on: [srv-b]}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}, run_on: [srv-a]}}
{extra}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: [hook]}}
      - {{after: {s1}s, notify: [hook]}}
      - {{after: {s2}s, notify: [hook]}}
"""
# Added by a reload during the outage: it runs once then, and not again for an hour.
LATE = "  - {name: late, type: tcp, host: 127.0.0.1, port: 9, interval: 1h, run_on: [srv-a]}"


def step_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


def outage_notices(payloads: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(agent, kind) of each store outage notice; the fleet's own incidents (a lapsed
    agent, the store pseudo check) may reach the same channel and are left out."""
    return [(p["agent"], p["store_outage"]) for p in payloads if p.get("store_outage")]


def last_run(agent: AgentProcess, name: str) -> float | None:
    """When the check's last probe finished, as this agent's /metrics says (memory)."""
    start = f'vaktpost_check_last_run_timestamp_seconds{{check="{name}"'
    status, body = agent.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(start):
            return float(line.rsplit(" ", 1)[1])
    return None


def metric(agent: AgentProcess, line_start: str) -> str:
    status, body = agent.get("/metrics")
    assert status == 200
    return next(line for line in body.decode().splitlines() if line.startswith(line_start))


def test_a_database_restart_mid_escalation(tmp_path: Path, own_pg: PgServer) -> None:
    dsn = own_pg.new_database()
    db = dsn.rsplit("/", 1)[1].split("?")[0]
    modem = tmp_path / "modem"  # one file per send: sends may run at once
    modem.mkdir()
    closed = free_port()
    agents: dict[str, AgentProcess] = {}
    configs: dict[str, tuple[Path, dict[str, Any]]] = {}
    with ThreadedReceiver() as hook, ThreadedReceiver() as ops:
        try:
            for name in ("srv-a", "srv-b"):
                port = free_port()
                cfg = tmp_path / f"{name}.yaml"
                values = dict(
                    name=name,
                    port=port,
                    state=tmp_path / f"state-{name}",
                    dsn=dsn,
                    lease=LEASE,
                    hook=hook.url,
                    ops=ops.url,
                    modem=modem,
                    closed=closed,
                    s1=STEP1,
                    s2=STEP2,
                    extra="",
                )
                cfg.write_text(CONFIG.format(**values))
                configs[name] = (cfg, values)
                agents[name] = AgentProcess(cfg, port=port)
            for agent in agents.values():
                agent.wait_ready()
            wait_until(hook.dedup_keys, timeout=20, what="step 0 delivered")

            crash(own_pg)
            stopped_wall = time.time()
            wait_until(
                lambda: len(outage_notices(ops.receiver.received)) >= 2,
                timeout=20,
                what="both agents' unreachable notices",
            )
            assert sorted(outage_notices(ops.receiver.received)) == [
                ("srv-a", "unreachable"),
                ("srv-b", "unreachable"),
            ]
            for agent in agents.values():
                assert metric(agent, "vaktpost_store_up ") == "vaktpost_store_up 0.0"
                assert agent.get("/healthz")[0] == 200
                assert agent.get("/")[0] == 200, "the status page, from memory"
            # Probing never stops: the pinned check's result keeps moving on srv-a.
            seen = last_run(agents["srv-a"], "app")
            assert seen is not None
            wait_until(
                lambda: (last_run(agents["srv-a"], "app") or 0) > seen + 0.3,
                timeout=5,
                what="a newer result during the outage",
            )
            # A check added now runs once, during the outage, and not again for an hour.
            cfg, values = configs["srv-a"]
            cfg.write_text(CONFIG.format(**{**values, "extra": LATE}))
            agents["srv-a"].proc.send_signal(signal.SIGHUP)
            late = wait_until(
                lambda: last_run(agents["srv-a"], "late"),
                timeout=10,
                what="the added check's first result",
            )
            assert late > stopped_wall
            assert not [s for s in hook.dedup_keys() if step_of(s) == 1], "nothing is sent"

            restart(own_pg)
            wait_until(
                lambda: len(outage_notices(ops.receiver.received)) >= 4,
                timeout=40,
                what="both agents' back notices",
            )
            wait_until(
                lambda: {step_of(k) for k in hook.dedup_keys()} >= {0, 1, 2},
                timeout=STEP2 + 10,
                what="steps 1 and 2",
            )
            wait_until(
                lambda: all(
                    metric(a, "vaktpost_store_up ") == "vaktpost_store_up 1.0"
                    for a in agents.values()
                ),
                timeout=10,
                what="store up again on both agents",
            )
            stored = own_pg.psql(
                "SELECT finished_at, agent FROM check_results WHERE check_name='late'", db
            )
        finally:
            for agent in agents.values():
                agent.stop()
        arrivals = {step_of(k): t for t, k in hook.arrivals}
        steps = Counter(step_of(k) for k in hook.dedup_keys())
        incident_ids = {k.rsplit("/", 2)[1] for k in hook.dedup_keys()}
        notices = outage_notices(ops.receiver.received)
        # The outage is told by the notices alone: no agent "lapsed" because nobody
        # could renew while the store was down, and no store incident after it.
        stray = [
            p.get("dedup_key")
            for p in ops.receiver.received
            if not p.get("store_outage")
            and str(p.get("system", "")).startswith(("fleet-agent-", "vaktpost-state-store"))
        ]
    assert stray == [], stray
    assert steps == {0: 1, 1: 1, 2: 1}, f"each step once: {hook.dedup_keys()}"
    assert incident_ids == {"1"}, "the same incident went on: no new one after the restart"
    late2 = arrivals[2] - arrivals[0] - STEP2
    assert -0.6 <= late2 <= 3.0, f"step 2 {late2:+.1f}s off its original clock"
    assert arrivals[1] - arrivals[0] > STEP1, "step 1 fell in the outage: sent after it"
    assert Counter(notices) == {
        ("srv-a", "unreachable"): 1,
        ("srv-b", "unreachable"): 1,
        ("srv-a", "back"): 1,
        ("srv-b", "back"): 1,
    }, notices
    modem_notices = sorted(
        (json.loads(f.read_text()) for f in modem.iterdir()), key=lambda p: p["created_at"]
    )
    assert outage_notices(modem_notices) == [("srv-b", "unreachable"), ("srv-b", "back")], (
        "modem is pinned to srv-b: only srv-b sends through it"
    )
    assert stored, "the result gathered during the outage was never written"
    finished, ran_by = stored.split("|")
    assert float(finished) == late and ran_by == "srv-a", (
        "the result gathered during the outage was written once the store was back"
    )
