"""Silence bodies are validated strictly, and one bad row never breaks the listing
(issue 9, item 5); ids are ASCII digits only (item 12); request bodies parse safely.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerting_fixtures import log_records
from tests.helpers import daemon, free_port, wait_until

CONFIG = """
agent:
  name: bounds
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 1}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
"""
JSON = {"Content-Type": "application/json"}


def send(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, raw, {} if method == "GET" else JSON)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


class Agent:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.state = tmp / "s"
        self.cfg = tmp / "cfg.yaml"
        self.log = tmp / "daemon.log"
        self.cfg.write_text(CONFIG.format(port=self.port, state=self.state, closed=free_port()))

    def running(self) -> Any:
        return daemon(self.cfg, self.log)

    def wait_incident(self) -> None:
        def open_incident() -> bool:
            try:
                status, body = send(self.port, "GET", "/api/v1/incidents?state=open")
            except OSError:
                return False
            return status == 200 and len(body["incidents"]) == 1

        wait_until(open_incident, 15, "the incident of the dead app")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    a = Agent(tmp_path_factory.mktemp("bounds"))
    with a.running():
        a.wait_incident()
        yield a


HOUR = 3600
BAD_SILENCES = [
    ({"matchers": {"check": "app"}, "duration_seconds": "1000000w"}, "at most 366 days"),
    ({"matchers": {"check": "app"}, "duration_seconds": 400 * 86400}, "at most 366 days"),
    ({"matchers": {"check": "app"}, "duration_seconds": 1e308 * 10}, "not a JSON number"),
    ({"matchers": {"check": "app"}, "duration_seconds": "1e400s"}, "at most 366 days"),
    ({"matchers": {"check": "app"}, "duration_seconds": "2 hours"}, "with a unit"),
    ({"matchers": {"check": "app"}, "duration_seconds": 0}, "positive"),
    ({"matchers": {"check": "app"}, "duration_seconds": -5}, "positive"),
    ({"matchers": {"check": "app"}, "duration_seconds": True}, "duration"),
    ({"matchers": {"check": "app"}, "duration_seconds": "9" * 100}, "too long"),
    ({"matchers": {"check": "app"}, "ends_at": "99999-01-01T00:00:00Z"}, "ends_at"),
    ({"matchers": {"check": "app"}, "ends_at": 1e18}, "out of range"),
    ({"matchers": {"check": "app"}, "ends_at": "2030-01-01T00:00:00"}, "zone"),
    ({"matchers": {"check": "app"}, "starts_at": 10, "ends_at": 5}, "ends before it starts"),
    ({"matchers": {"check": "app"}, "starts_at": 10, "ends_at": 20}, "already be over"),
    ({"matchers": {"check": "app"}, "ends_at": 4e9, "duration_seconds": 60}, "not both"),
    ({"matchers": {"check": "app"}}, "give ends_at or duration_seconds"),
    ({"matchers": {}, "duration_seconds": HOUR}, "non-empty"),
    ({"matchers": ["check"], "duration_seconds": HOUR}, "non-empty"),
    ({"matchers": {"check": 5}, "duration_seconds": HOUR}, "matchers.check"),
    ({"matchers": {"check": ""}, "duration_seconds": HOUR}, "matchers.check"),
    ({"matchers": {"bad key!": "x"}, "duration_seconds": HOUR}, "is not a name"),
    ({"matchers": {f"k{i}": "x" for i in range(17)}, "duration_seconds": HOUR}, "at most 16"),
    ({"matchers": {"check": "x" * 300}, "duration_seconds": HOUR}, "matchers.check"),
    ({"matchers": {"check": "a\x1b[2J"}, "duration_seconds": HOUR}, "control"),
    ({"matchers": {"check": "app"}, "duration_seconds": HOUR, "comment": "c" * 2001}, "2000"),
    ({"matchers": {"check": "app"}, "duration_seconds": HOUR, "comment": {"a": 1}}, "string"),
    ({"matchers": {"check": "app"}, "duration_seconds": HOUR, "created_by": "x" * 201}, "200"),
    ({"matchers": {"check": "app"}, "duration_seconds": HOUR, "created_by": "a\nb"}, "control"),
    ({"matchers": {"check": "app"}, "duration_seconds": HOUR, "ends": 5}, "unknown key"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_SILENCES)
def test_bad_silences_are_400_with_the_reason(agent: Agent, body: Any, reason: str) -> None:
    status, answer = send(agent.port, "POST", "/api/v1/silences", body)
    assert status == 400, answer
    assert reason in answer["error"]
    assert "\n" not in answer["error"] and len(answer["error"]) < 300
    status, listed = send(agent.port, "GET", "/api/v1/silences")
    assert status == 200 and listed == {"silences": []}


def test_good_silences_up_to_a_year(agent: Agent) -> None:
    now = time.time()
    for body in (
        {"matchers": {"check": "app", "team": "ops*"}, "duration_seconds": "366d"},
        {"matchers": {"system": "app"}, "duration": "1h30m", "comment": "two\nlines\tok"},
        {"matchers": {"check": "app"}, "starts_at": now + 60, "ends_at": now + 120},
        {"matchers": {"check": "app"}, "ends_at": _rfc(now + 90)},
    ):
        status, created = send(agent.port, "POST", "/api/v1/silences", body)
        assert status == 201, (body, created)
        status, _ = send(agent.port, "DELETE", f"/api/v1/silences/{created['id']}")
        assert status == 200


def _rfc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@pytest.mark.parametrize("raw", ["١", " 1", "1 ", "01", "+1", "1_0", "0", "-1", "１", "9" * 30])
def test_ids_are_ascii_digits_only(agent: Agent, raw: str) -> None:
    from urllib.parse import quote

    path = f"/api/v1/incidents/{quote(raw)}/ack"
    status, answer = send(agent.port, "POST", path, {"by": "mallory"})
    assert status == 404, answer
    assert send(agent.port, "DELETE", f"/api/v1/silences/{quote(raw)}")[0] == 404
    (incident,) = send(agent.port, "GET", "/api/v1/incidents?state=open")[1]["incidents"]
    assert incident["id"] == 1 and incident["acknowledged_by"] is None


def test_request_bodies_parse_safely(agent: Agent) -> None:
    nested = b'{"a": ' + b"[" * 30000 + b"]" * 30000 + b"}"  # ~60 KB
    status, answer = send(agent.port, "POST", "/api/v1/silences", nested)
    assert status == 400 and "nested" in answer["error"]
    deep = b'{"matchers": ' + b'{"a": ' * 40 + b"1" + b"}" * 41
    status, answer = send(agent.port, "POST", "/api/v1/silences", deep)
    assert status == 400 and "nested deeper" in answer["error"]
    for raw in (b'{"duration_seconds": NaN}', b'{"duration_seconds": Infinity}'):
        status, answer = send(agent.port, "POST", "/api/v1/silences", raw)
        assert status == 400 and "not a JSON number" in answer["error"]
    status, answer = send(agent.port, "POST", "/api/v1/silences", b"{" + b" " * 70000 + b"}")
    assert status == 413
    status, answer = send(agent.port, "POST", "/api/v1/silences", b"\xff\xfe")
    assert status == 400 and "invalid JSON" in answer["error"]


def test_a_bad_stored_silence_is_skipped_not_fatal(tmp_path: Path) -> None:
    """A row written before silences were bounded: the listing skips it, also after restart."""
    agent = Agent(tmp_path)
    with agent.running():
        agent.wait_incident()
        status, good = send(
            agent.port,
            "POST",
            "/api/v1/silences",
            {"matchers": {"check": "x"}, "duration_seconds": 3600},
        )
        assert status == 201
    now = time.time()
    bad = {"id": 7, "matchers": {"check": "app"}, "starts_at": now, "ends_at": now + 6.048e11}
    bad.update(comment="", created_by="old")
    db = sqlite3.connect(agent.state / "vaktpost.db")
    with db:
        db.execute(
            "INSERT INTO silences(id, ends_at, data) VALUES (?, ?, ?)",
            (7, bad["ends_at"], json.dumps(bad)),
        )
    db.close()
    with agent.running():
        agent.wait_incident()
        for _ in range(2):
            status, listed = send(agent.port, "GET", "/api/v1/silences")
            assert status == 200, listed
            assert [s["id"] for s in listed["silences"]] == [good["id"]]
        wait_until(
            lambda: [r for r in log_records(agent.log) if "silence 7" in str(r.get("msg"))],
            10,
            "the skipped row to be logged",
        )
        named = [r for r in log_records(agent.log) if "silence 7" in str(r.get("msg"))]
        assert len(named) == 1, "logged once, not on every listing"
