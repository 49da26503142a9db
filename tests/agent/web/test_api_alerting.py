"""The alerting HTTP API and the CLI that uses it, against a daemon subprocess."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from agent.web.auth import is_loopback
from tests.helpers import ROOT, daemon, free_port, vaktpost_cmd, wait_until

PASSWORD = "correct horse battery"
CONFIG = """
agent:
  name: api
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
  web:
    users:
      ops: {{password_hash: "{ops}", role: operator}}
      viewer: {{password_hash: "{viewer}", role: viewer}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
"""


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("api")
    port = free_port()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(port=port, state=tmp / "s", ops=hashed, viewer=hashed, closed=free_port())
    )
    url = f"http://127.0.0.1:{port}"
    with daemon(cfg, tmp / "daemon.log"):
        wait_until(lambda: open_incidents(url), 15, "the incident of the dead app")
        yield url


def open_incidents(url: str) -> list[dict[str, Any]]:
    try:
        out = cli(url, "status", "--format", "json", check=False)
        return list(json.loads(out.stdout)["incidents"]) if out.stdout else []
    except (ValueError, KeyError):
        return []


def cli(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VAKTPOST_PASSWORD=PASSWORD)
    out = subprocess.run(
        vaktpost_cmd(*args, "--url", url),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=20,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


async def call(
    method: str, url: str, user: str | None = None, password: str = PASSWORD, **kw: Any
) -> tuple[int, Any]:
    # Every write declares JSON, with or without a body (docs/security.md).
    headers = {} if method == "GET" else {"Content-Type": "application/json"}
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, headers=headers, **kw) as r,
    ):
        return r.status, await r.json()


async def test_writes_need_an_operator(agent_url: str) -> None:
    incident = open_incidents(agent_url)[0]
    ack = f"{agent_url}/api/v1/incidents/{incident['id']}/ack"
    status, body = await call("POST", ack, json={})
    assert status == 401 and "authentication" in body["error"]
    status, body = await call("POST", ack, "viewer", json={})
    assert status == 403
    status, body = await call("POST", ack, "ops", "wrong", json={})
    assert status == 401 and PASSWORD not in json.dumps(body)
    status, body = await call("POST", ack, "nobody", json={})
    assert status == 401
    status, body = await call("POST", ack, "ops", json={"comment": "looking"})
    assert status == 200
    assert body["acknowledged_by"] == "ops" and body["ack_comment"] == "looking"
    assert body["status"] == "acknowledged"


async def test_incident_listing_and_errors(agent_url: str) -> None:
    status, body = await call("GET", f"{agent_url}/api/v1/incidents")
    assert status == 200
    (incident,) = body["incidents"]
    assert incident["department"] is None and incident["system"] == "app"
    assert incident["steps_taken"] == [0] and incident["notified"] == ["log"]
    status, body = await call("GET", f"{agent_url}/api/v1/incidents?state=bogus")
    assert status == 400
    status, body = await call("POST", f"{agent_url}/api/v1/incidents/999/ack", "ops", json={})
    assert status == 404
    status, body = await call(
        "POST", f"{agent_url}/api/v1/silences", "ops", data=b"{" + b" " * 70000 + b"}"
    )
    assert status == 413


async def test_silence_lifecycle(agent_url: str) -> None:
    url = f"{agent_url}/api/v1/silences"
    status, body = await call("POST", url, "ops", json={"matchers": {"check": "a*"}})
    assert status == 400 and "duration_seconds" in body["error"]
    status, body = await call("POST", url, "viewer", json={})
    assert status == 403
    status, created = await call(
        "POST",
        url,
        "ops",
        json={"matchers": {"check": "app"}, "duration_seconds": 600, "comment": "patch"},
    )
    assert status == 201 and created["created_by"] == "ops"
    status, listed = await call("GET", url)
    assert created["id"] in [s["id"] for s in listed["silences"]]
    status, _ = await call("DELETE", f"{url}/{created['id']}", "ops")
    assert status == 200
    status, listed = await call("GET", url)
    assert created["id"] not in [s["id"] for s in listed["silences"]]


def test_cli_status_ack_silence(agent_url: str) -> None:
    out = cli(
        agent_url,
        "silence",
        "--match",
        "check=app",
        "--for",
        "2h",
        "--user",
        "ops",
        "--comment",
        "cli",
    )
    assert out.stdout.startswith("silence ")
    incident = open_incidents(agent_url)[0]
    out = cli(agent_url, "ack", str(incident["id"]), "--user", "ops", "--by", "kim")
    assert "acknowledged by kim" in out.stdout
    table = cli(agent_url, "status", check=False)
    assert table.returncode == 1 and "kim" in table.stdout and "acknowledged" in table.stdout
    denied = cli(agent_url, "ack", str(incident["id"]), check=False)
    assert denied.returncode != 0 and "401" in denied.stderr


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("192.168.1.5", False),
        (None, False),
        ("garbage", False),
    ],
)
def test_loopback_detection(remote: str | None, local: bool) -> None:
    assert is_loopback(remote) is local


def test_drill_cli_json_equals_engine(tmp_path: Path) -> None:
    from alerting.drill import run_drill
    from tests.alerting_fixtures import BASE_YAML, config_from

    text = BASE_YAML.format(state_dir=tmp_path, extra="")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    out = subprocess.run(
        vaktpost_cmd("drill", "-c", str(cfg), "--system", "social/case", "--format", "json"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=20,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    engine = run_drill(config_from(text), "social/case", 12 * 3600, 0.0).to_json()
    strip = [{k: e[k] for k in ("at_seconds", "kind", "step", "channels")} for e in doc["events"]]
    assert strip == [
        {k: e[k] for k in ("at_seconds", "kind", "step", "channels")} for e in engine["events"]
    ]
    assert doc["department"] == "social" and doc["rto_seconds"] == 7200
