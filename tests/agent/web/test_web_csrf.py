"""Cross-site request forgery: a browser's cross-site POST writes nothing (issue 9, item 4).

A real daemon with an operator; the requests carry the operator's basic login, as a
browser with a cached login would attach it to a cross-site form or text/plain POST.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bcrypt
import pytest

from agent.web.csrf import TokenSigner
from tests.alerting_fixtures import log_records
from tests.helpers import daemon, free_port, wait_until

PASSWORD = "operator password"
OPS = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
SILENCE = {"matchers": {"check": "*"}, "duration_seconds": "4w", "comment": "csrf"}
CONFIG = """
agent:
  name: csrf
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 1}}
  web:
    users:
      ops: {{password_hash: "{hashed}", role: operator}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}}}
"""


def send(
    url: str, method: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Exactly these headers (urllib would add a form Content-Type to any body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("csrf")
    port = free_port()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(CONFIG.format(port=port, state=tmp / "s", hashed=hashed, closed=free_port()))
    url = f"http://127.0.0.1:{port}"
    log = tmp / "daemon.log"
    with daemon(cfg, log):

        def incident() -> bool:
            try:
                status, body = send(url + "/api/v1/incidents?state=open", "GET", None, {})
            except OSError:
                return False
            return status == 200 and len(body["incidents"]) == 1

        wait_until(incident, 15, "the incident of the dead app")
        yield url, log


CROSS_SITE = [
    # (what a browser can send cross-site without a preflight, headers)
    ("text/plain, no Origin", {"Content-Type": "text/plain"}),
    ("text/plain from evil", {"Content-Type": "text/plain", "Origin": "https://127.0.0.2:1"}),
    ("form", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("multipart", {"Content-Type": "multipart/form-data; boundary=x"}),
    ("no type", {}),
    ("JSON but Origin evil", {"Content-Type": "application/json", "Origin": "http://127.0.0.2:1"}),
    ("JSON but Origin null", {"Content-Type": "application/json", "Origin": "null"}),
    (
        "JSON but Referer evil",
        {"Content-Type": "application/json", "Referer": "http://127.0.0.2:1/x"},
    ),
    (
        "JSON, Origin on another port",
        {"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"},
    ),
]


@pytest.mark.parametrize(("what", "headers"), CROSS_SITE, ids=[c[0] for c in CROSS_SITE])
def test_cross_site_writes_are_refused(
    agent: tuple[str, Path], what: str, headers: dict[str, str]
) -> None:
    url, log = agent
    body = json.dumps(SILENCE).encode()
    auth = {"Authorization": OPS, **headers}
    status, answer = send(url + "/api/v1/silences", "POST", body, auth)
    assert status == 403, (what, answer)
    assert "error" in answer and (
        "Content-Type" in answer["error"]
        or "Origin" in answer["error"]
        or "Referer" in answer["error"]
    )
    assert send(url + "/api/v1/incidents/1/ack", "POST", b'{"by": "mallory"}', auth)[0] == 403
    assert send(url + "/api/v1/silences/1", "DELETE", None, auth)[0] == 403
    assert send(url + "/-/reload", "POST", b"", auth)[0] == 403
    # Nothing happened: no silence, no ack, no reload.
    assert send(url + "/api/v1/silences", "GET", None, {})[1] == {"silences": []}
    (incident,) = send(url + "/api/v1/incidents?state=open", "GET", None, {})[1]["incidents"]
    assert incident["acknowledged_by"] is None
    assert not [r for r in log_records(log) if r.get("msg") == "config reloaded"]


def test_same_origin_and_cli_style_writes_work(agent: tuple[str, Path]) -> None:
    url, _ = agent
    js = {"Content-Type": "application/json; charset=utf-8", "Authorization": OPS}
    body = json.dumps({**SILENCE, "duration_seconds": 60}).encode()
    status, created = send(url + "/api/v1/silences", "POST", body, {**js, "Origin": url})
    assert status == 201, created
    status, _ = send(url + "/api/v1/silences", "POST", body, {**js, "Referer": url + "/"})
    assert status == 201
    # The CLI sends neither Origin nor Referer.
    status, _ = send(f"{url}/api/v1/silences/{created['id']}", "DELETE", None, js)
    assert status == 200
    assert send(url + "/-/reload", "POST", None, js)[0] == 200
    # Reads need no JSON type and may come from anywhere.
    assert send(url + "/api/v1/silences", "GET", None, {"Origin": "http://127.0.0.2:1"})[0] == 200


def test_loopback_writes_without_users_need_a_loopback_host(tmp_path: Path) -> None:
    """Without users, a DNS-rebound page (Host: its own name) cannot write via loopback."""
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"agent: {{listen: '127.0.0.1:{port}', state_dir: {tmp_path}/s}}\n"
        "checks: [{name: mem, type: memory, interval: 1s}]\n"
    )
    url = f"http://127.0.0.1:{port}"
    with daemon(cfg, tmp_path / "d.log"):
        wait_until(lambda: _up(url), 15, "the agent")
        js = {"Content-Type": "application/json"}
        rebound = {**js, "Host": f"attacker.example:{port}"}
        status, answer = send(url + "/-/reload", "POST", None, rebound)
        assert status == 403 and "localhost" in answer["error"]
        assert send(url + "/-/reload", "POST", None, {**js, "Host": f"localhost:{port}"})[0] == 200
        assert send(url + "/-/reload", "POST", None, js)[0] == 200


def _up(url: str) -> bool:
    try:
        return send(url + "/healthz", "GET", None, {})[0] == 200
    except OSError:
        return False


def test_csrf_tokens_are_bound_to_subject_and_time() -> None:
    signer = TokenSigner(b"k" * 32)
    token = signer.issue("ops", now=1000.0)
    assert signer.valid(token, "ops", now=1000.0)
    assert not signer.valid(token, "soc", now=1000.0)  # another user
    assert not signer.valid(token, "ops", now=1000.0 + 3601)  # expired
    assert not TokenSigner(b"x" * 32).valid(token, "ops", now=1000.0)  # after a restart
    expires, _, mac = token.partition(".")
    assert not signer.valid(f"{int(expires) + 10}.{mac}", "ops", now=1000.0)  # extended
    for junk in ("", ".", "abc", "1.", "١٢.x", "9" * 40 + ".x", f"{expires}.!!"):
        assert not signer.valid(junk, "ops", now=1000.0), junk
