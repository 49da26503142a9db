"""Channel `run_on` in a fleet: two `vaktpost run` on one real PostgreSQL. A channel
pinned to srv-gw is delivered only by srv-gw, although srv-a holds the engine and
queues every notification. With srv-gw killed (-9) its queued notification waits
for one lease after srv-gw's lease lapsed, then goes to the channel's fallback; a
pinned channel without a fallback keeps waiting (metric, one log line) and is
delivered when srv-gw returns."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver
from tests.fleet.fleet_agents import agent_config
from tests.helpers import AgentProcess, wait_until

LEASE = 4.0
# Seconds from the incident's start to step 1: after srv-gw's kill (right after step 0),
# before the wait for srv-gw could be over (at least 5/3 of a lease after the kill).
STEP1 = 5.0

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  state_dir: {state}
  store: "{dsn}"
  fleet: {{lease: {lease}s}}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
channels:
  lan: {{type: webhook, url: "{lan}", concurrency: 1, run_on: [srv-gw], fallback: [mail]}}
  modem: {{type: webhook, url: "{modem}", concurrency: 1, run_on: ["srv-g*"]}}
  mail: {{type: webhook, url: "{mail}", concurrency: 1, run_on: [srv-a]}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {app}}}
departments:
  - id: dept
    systems: [{{id: app, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: [lan]}}
      - {{after: {step1}s, notify: [lan, modem]}}
"""


def steps(receiver: ThreadedReceiver) -> list[int]:
    """The app incident's steps that arrived (a lapsed agent's own incident aside)."""
    return [int(k.rsplit("/", 1)[1]) for k in receiver.dedup_keys() if "/dept/app/" in k]


def metric_lines(agent: AgentProcess, prefix: str) -> list[str]:
    status, body = agent.get("/metrics")
    assert status == 200
    return [line for line in body.decode().splitlines() if line.startswith(prefix)]


def holder(agent: AgentProcess) -> str | None:
    status, body = agent.get("/api/v1/fleet")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    name: str | None = doc["engine"]["holder"]
    return name


def test_a_pinned_channel_is_delivered_by_its_agent_and_waits_then_falls_back(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    db = dsn.rsplit("/")[-1].split("?")[0]
    app = socket.create_server(("127.0.0.1", 0))  # up at first: no incident before both run
    app_port = app.getsockname()[1]
    agents: dict[str, AgentProcess] = {}
    with ThreadedReceiver() as lan, ThreadedReceiver() as modem, ThreadedReceiver() as mail:

        def start(name: str) -> AgentProcess:
            cfg, port = agent_config(
                tmp_path, name, CONFIG, dsn=dsn, lease=LEASE, lan=lan.url, modem=modem.url,
                mail=mail.url, app=app_port, step1=STEP1,
            )  # fmt: skip
            agent = AgentProcess(cfg, tmp_path / f"{name}-{len(agents)}.log", port=port)
            agents[f"{name}-{len(agents)}"] = agent
            agent.wait_ready()
            return agent

        try:
            # srv-a holds the engine: it queues and is woken first, so without run_on it
            # (not srv-gw) would send lan's rows.
            a = start("srv-a")
            wait_until(lambda: holder(a) == "srv-a", 15, "srv-a holds the engine lease")
            gw = start("srv-gw")
            wait_until(lambda: holder(gw) == "srv-a", 15, "srv-gw sees srv-a hold it")
            wait_until(
                lambda: metric_lines(a, 'vaktpost_channel_undeliverable{channel="lan"} 0'),
                10,
                "srv-a sees srv-gw live",
            )
            app.close()  # the check fails: the incident opens, step 0 goes to lan
            wait_until(lambda: steps(lan), 20, "step 0 delivered on lan")
            assert steps(lan) == [0]
            assert metric_lines(gw, 'vaktpost_notifications_total{channel="lan",outcome="del')
            assert not metric_lines(a, 'vaktpost_notifications_total{channel="lan"'), (
                "srv-a never sends srv-gw's channel"
            )

            seen = len(a.log_records())
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait()
            killed = time.monotonic()

            def step1_state(channel: str) -> str:
                return pg_server.psql(
                    f"SELECT state FROM outbox WHERE channel='{channel}' AND dedup_key LIKE '%/1'",
                    db,
                )

            wait_until(lambda: step1_state("lan") == "pending", STEP1 + 5, "step 1 queued")
            assert steps(mail) == [], "it waits: srv-gw may only just have died"
            wait_until(lambda: steps(mail), 4 * LEASE + 5, "step 1 handed to mail")
            waited = next(t for t, k in mail.arrivals if "/dept/app/" in k) - killed
            # srv-gw's lease lapses at most a lease after the kill (and at least two
            # thirds of one); the rows wait one more lease on the database's clock.
            assert 5 / 3 * LEASE - 0.5 <= waited <= 2 * LEASE + 4, f"handed over {waited:.1f}s"
            assert steps(mail) == [1]
            assert steps(lan) == [0], "nothing from the dead agent"
            assert pg_server.psql(
                "SELECT state, last_error FROM outbox WHERE channel='lan' AND dedup_key LIKE '%/1'",
                db,
            ) == ("skipped|no live agent may deliver lan: srv-gw down")

            # modem has no fallback: its row waits, visibly, until srv-gw returns.
            assert step1_state("modem") == "pending"
            assert steps(modem) == []
            assert metric_lines(a, 'vaktpost_channel_undeliverable{channel="modem"} 1.0')
            said = [
                r
                for r in a.log_records()[seen:]
                if "no live agent may deliver the channel" in str(r.get("msg"))
                and r.get("channel") == "modem"
            ]
            assert len(said) == 1, said

            gw2 = start("srv-gw")
            wait_until(lambda: steps(modem), 15, "modem's row delivered by srv-gw again")
            assert steps(modem) == [1]
            wait_until(
                lambda: metric_lines(a, 'vaktpost_channel_undeliverable{channel="modem"} 0'),
                10,
                "modem deliverable again",
            )
            assert steps(lan) == [0], "lan's step 1 went to mail"
            assert steps(mail) == [1]
            assert metric_lines(gw2, 'vaktpost_notifications_total{channel="modem",outcome="del')
            assert not metric_lines(a, 'vaktpost_notifications_total{channel="modem"')
        finally:
            app.close()
            for agent in agents.values():
                agent.stop()
