"""Acks and silences at any agent: two `vaktpost run` on one real PostgreSQL, and
every way of acknowledging (the API, an ack link, an SMS code) and of silencing,
sent to the agent that does NOT hold the engine lease, is applied by the holder
and answered with its verdict. Before forwarding, the non-holder answered 409."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.agent.state.pg_fixtures import PgServer
from tests.alerting_fixtures import ThreadedReceiver
from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  name: {name}
  listen: 127.0.0.1:{port}
  external_url: {external}
  state_dir: {state}
  store: "{dsn}"
  language: en
  fleet: {{lease: 3s}}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [hook]}}
channels:
  hook: {{type: webhook, url: "{hook}", concurrency: 1}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
departments:
  - id: dept
    name: Department
    systems: [{{id: app, name: The App, checks: [app]}}]
    escalation:
      - {{after: 0s, notify: ["person:anna"]}}
      - {{after: 1h, notify: [hook]}}
"""


def call(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    data = None
    req_headers = dict(headers or {})
    if method != "GET":
        if isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body if body is not None else {}).encode()
            req_headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data, req_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def holder_of(agent: AgentProcess) -> str | None:
    status, body = agent.get("/api/v1/fleet")
    assert status == 200, body
    holder: str | None = json.loads(body)["engine"]["holder"]
    return holder


def open_incident(agent: AgentProcess) -> dict[str, Any]:
    status, body = agent.get("/api/v1/incidents?state=open")
    assert status == 200, body
    [incident] = json.loads(body)["incidents"]
    return incident  # type: ignore[no-any-return]


def silences(agent: AgentProcess) -> list[dict[str, Any]]:
    status, body = agent.get("/api/v1/silences")
    assert status == 200, body
    return json.loads(body)["silences"]  # type: ignore[no-any-return]


def test_acks_and_silences_at_the_non_holder_are_the_holders(
    tmp_path: Path, pg_server: PgServer
) -> None:
    dsn = pg_server.new_database()
    closed = free_port()
    ports = {"srv-a": free_port(), "srv-b": free_port()}
    # One external_url for the fleet (the config hash must agree); links are opened
    # at whichever agent the test picks, as a proxy in front of the fleet would.
    external = f"http://127.0.0.1:{ports['srv-a']}/"
    agents: dict[str, AgentProcess] = {}
    with ThreadedReceiver() as receiver:
        try:
            for name, port in ports.items():
                cfg = tmp_path / f"{name}.yaml"
                cfg.write_text(
                    CONFIG.format(
                        name=name, port=port, external=external, state=tmp_path / name,
                        dsn=dsn, hook=receiver.url, closed=closed,
                    )
                )  # fmt: skip
                agents[name] = AgentProcess(cfg, port=port)
            for agent in agents.values():
                agent.wait_ready()
            wait_until(
                lambda: {holder_of(a) for a in agents.values()} in ({"srv-a"}, {"srv-b"}),
                15,
                "one holder both agents agree on",
            )
            holder = agents[holder_of(agents["srv-a"]) or ""]
            other = next(a for a in agents.values() if a is not holder)
            firing = wait_until(lambda: receiver.receiver.received, 20, "step 0")[0]
            incident_id, code = firing["incident_id"], firing["ack_code"]
            token_path = "/ack/" + firing["ack_url"].rsplit("/ack/", 1)[1]

            # An ack link at the non-holder: the page reads the incident from the store,
            # and its confirmation is applied by the holder.
            status, page = call(other.base + token_path)
            assert status == 200 and "Department: The App" in page, page
            status, page = call(
                other.base + token_path,
                "POST",
                b"",
                {"Content-Type": "application/x-www-form-urlencoded", "Origin": other.base},
            )
            assert status == 200 and "Acknowledged by Anna Lind" in page, page
            assert open_incident(holder)["acknowledged_by"] == "Anna Lind"

            # An SMS code at the non-holder (its own copy of the incidents is stale).
            status, body = call(
                other.base + "/api/v1/ack-code",
                "POST",
                {"code": f"K {code} on my way", "from": "+46701234567"},
            )
            assert status == 200, body
            reply = json.loads(body)
            assert reply["acknowledged"] and reply["incident_id"] == incident_id, reply
            acked = open_incident(holder)
            assert (acked["acknowledged_by"], acked["ack_comment"]) == ("Anna Lind", "on my way")
            events = pg_server.psql(
                f"SELECT message FROM incident_events WHERE incident_id={incident_id}"
                " AND kind='acknowledged' ORDER BY id",
                dsn.rsplit("/", 1)[1].split("?", 1)[0],
            )
            assert events.splitlines() == ["Anna Lind via link", "Anna Lind via sms: on my way"]

            # The API: the same body the holder would answer, and 404 as the holder says.
            status, body = call(
                f"{other.base}/api/v1/incidents/{incident_id}/ack",
                "POST",
                {"by": "bertil", "comment": "taking over"},
            )
            assert status == 200, body
            acked = json.loads(body)
            at_holder = open_incident(holder)
            assert acked["acknowledged_by"] == at_holder["acknowledged_by"] == "bertil"
            assert set(acked) == set(at_holder)
            assert acked["id"] == incident_id and acked["ack_comment"] == "taking over"
            status, body = call(f"{other.base}/api/v1/incidents/9999/ack", "POST", {})
            assert status == 404 and json.loads(body)["error"] == "no open incident 9999"

            # Silences: created and expired at the non-holder, held by the holder.
            status, body = call(
                other.base + "/api/v1/silences",
                "POST",
                {"matchers": {"check": "app"}, "duration_seconds": 3600, "comment": "patch"},
            )
            assert status == 201, body
            silence = json.loads(body)
            assert [s["id"] for s in silences(holder)] == [silence["id"]]
            assert silence["comment"] == "patch"
            status, body = call(f"{other.base}/api/v1/silences/{silence['id']}", "DELETE")
            assert status == 200, body
            assert silences(holder) == []
            status, body = call(f"{other.base}/api/v1/silences/777", "DELETE")
            assert status == 404 and "no active silence 777" in body, body

            applied = [
                r
                for r in holder.log_records()
                if r.get("msg") == "applied a request from another agent"
            ]
            # link, code, ack, ack 9999, silence, expire, expire 777: each once, by the holder
            assert len(applied) == 7, applied
            assert not any(
                r.get("msg") == "applied a request from another agent" for r in other.log_records()
            )
        finally:
            for agent in agents.values():
                agent.stop()
