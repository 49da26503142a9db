"""Secrets planted in a config never come out: not in check output, API, page, metrics,
notifications, the state store, the debug log or `validate` (issue 9, item 6)."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import logs
from checks.base import CheckContext, CheckResult, Status
from checks.http import HttpCheck
from checks.http_config import HttpConfig
from core.redact import describe_file, printable, redact_text, redact_url
from tests.helpers import ROOT, VAKTPOST, free_port, wait_until

SECRET = "S3cr3tPW"


class Target(ThreadingHTTPServer):
    """GET answers 500 (so http checks fail and name their URL); POST bodies are kept."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, bytes]] = []
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    server: Target

    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.shutdown()
    server.server_close()


def secret_config(tmp: Path, target: Target, port: int) -> Path:
    t = target.port
    config = tmp / "secret.yaml"
    config.write_text(
        f"""
agent:
  name: redaction
  listen: 127.0.0.1:{port}
  state_dir: {tmp}/state
  language: en
  defaults: {{interval: 300ms, timeout: 2s, failures_before_alert: 1}}
channels:
  hook: {{type: webhook, url: "http://127.0.0.1:{t}/hook?token={SECRET}"}}
  app: {{type: apprise, urls: ["json://mon:{SECRET}@127.0.0.1:{t}/apprise/{SECRET}?t={SECRET}"]}}
checks:
  - {{name: web, type: http, url: "http://mon:{SECRET}@127.0.0.1:{t}/x?apikey={SECRET}"}}
  - {{name: uplink, type: link, targets: ["http://up:{SECRET}@127.0.0.1:{t}/"]}}
departments:
  - id: dept
    name: Department
    systems:
      - {{id: app, name: The App, checks: [web, uplink], rto: 1h}}
    escalation:
      - {{after: 0s, notify: [hook, app]}}
"""
    )
    return config


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        body: bytes = resp.read()
        return body


def test_planted_secrets_reach_no_output_of_a_real_daemon(tmp_path: Path, target: Target) -> None:
    port = free_port()
    config = secret_config(tmp_path, target, port)
    log = tmp_path / "daemon.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*VAKTPOST, "run", "-c", str(config), "--log-level", "debug"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_until(lambda: get(port, "/healthz"), timeout=30, what="the daemon")

        def all_checks_ran() -> bool:
            checks = json.loads(get(port, "/api/v1/checks"))["checks"]
            return all(c["status"] == "critical" for c in checks)

        wait_until(all_checks_ran, timeout=30, what="both checks to fail")

        def paths() -> set[str]:
            return {p.split("?")[0] for p, _ in target.posts}

        wait_until(lambda: {"/hook", f"/apprise/{SECRET}"} <= paths(), 30, "both notifications")
        outputs = {
            path: get(port, path)
            for path in ("/api/v1/checks", "/api/v1/incidents", "/", "/metrics")
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    checks = json.loads(outputs["/api/v1/checks"])["checks"]
    messages = {c["name"]: c["message"] for c in checks}
    # The URLs are still named, so an operator can find the target, only without secrets.
    assert f"http://***@127.0.0.1:{target.port}/x?apikey=***" in messages["web"]
    assert f"http://***@127.0.0.1:{target.port}/" in messages["uplink"]
    for path, body in outputs.items():
        assert SECRET.encode() not in body, path
    for _, body in target.posts:
        if body:
            assert SECRET.encode() not in body, body[:200]
    stored = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert stored
    for file in stored:
        assert SECRET.encode() not in file.read_bytes(), file.name
    text = log.read_text()
    assert '"level": "debug"' in text  # the debug level really was on
    assert SECRET not in text


def test_check_json_output_has_no_secret(tmp_path: Path, target: Target) -> None:
    config = secret_config(tmp_path, target, free_port())
    proc = subprocess.run(
        [*VAKTPOST, "check", "-c", str(config), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert {r["name"]: r["status"] for r in doc["results"]} == {
        "web": "critical",
        "uplink": "critical",
    }
    assert SECRET not in proc.stdout + proc.stderr


def test_validate_names_keys_never_values(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "checks:\n"
        f"  - {{name: a, type: http, url: 'ftp://u:{SECRET}@h/',\n"
        f"      basic_auth: {{username: u, password_file: {SECRET}}}}}\n"
        f"  - {{name: b, type: memory, password:{SECRET}}}\n"
        f"  - {{name: c, type: memory, interval: {SECRET}}}\n"
        f"  - {{name: d, type: link, targets: [{SECRET}, 'tcp://u:{SECRET}@h']}}\n"
        f"  - {{name: e, type: {SECRET}}}\n"
        f"  - {{name: '{SECRET}', type: memory}}\n"
    )
    proc = subprocess.run(
        [*VAKTPOST, "validate", "-c", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert f"{config}:4: checks[1].<a key containing ':'>: unknown key (a mapping key " in (
        proc.stderr
    )
    assert "did you forget a space after the colon?" in proc.stderr
    assert f"{config}:5: checks[2].interval: invalid duration: use a number" in proc.stderr
    assert all(line.startswith(f"{config}:") for line in lines), lines
    assert len(lines) >= 6
    assert SECRET not in proc.stderr + proc.stdout


def test_redact_url_keeps_where_and_drops_credentials() -> None:
    assert redact_url("https://mon:pw@host.invalid:8443/a/b?apikey=k&x=1#frag") == (
        "https://***@host.invalid:8443/a/b?apikey=***&x=***#***"
    )
    assert redact_url("http://host.invalid/p?token") == "http://host.invalid/p?***"
    assert redact_url("http://host.invalid/plain") == "http://host.invalid/plain"
    # A password with '?' or '#' must not leave half of itself in the "path".
    assert redact_url(f"http://u:a?{SECRET}#x@host.invalid/") == "http://***@host.invalid/"
    assert redact_url("tcp://u:p@[::1]:53") == "tcp://***@[::1]:53"


def test_redact_text_finds_urls_inside_exception_texts() -> None:
    text = f"400, message='Bad', url=URL('http://u:{SECRET}@h/x?k={SECRET}'), (last http://a:b@c/)."
    assert redact_text(text) == (
        "400, message='Bad', url=URL('http://***@h/x?k=***'), (last http://***@c/)."
    )


def test_every_check_result_message_is_redacted() -> None:
    result = CheckResult(Status.CRITICAL, f"request to https://u:{SECRET}@h/ failed")
    assert result.message == "request to https://***@h/ failed"


def test_a_password_in_password_file_is_not_echoed() -> None:
    assert describe_file("/etc/vaktpost/pw") == "/etc/vaktpost/pw"
    assert describe_file(SECRET) == "(a value that is not a file path)"


async def test_http_check_with_missing_password_file_names_no_secret(
    tmp_path: Path, target: Target
) -> None:
    config = HttpConfig.model_validate(
        {
            "name": "h",
            "type": "http",
            "url": f"http://127.0.0.1:{target.port}/",
            "basic_auth": {"username": "u", "password_file": SECRET},
        }
    )
    check = HttpCheck(config, CheckContext(tmp_path, "t"))
    try:
        result = await check.run()
    finally:
        await check.aclose()
    assert result.status is Status.UNKNOWN
    assert result.message == (
        "cannot read basic_auth.password_file (a value that is not a file path): "
        "No such file or directory"
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_filter_redacts_third_party_records_at_debug(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.setup("debug", json_logs=True)
    # urllib3's request line, as apprise's plugins make it: the path is the credential.
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s',
        "https",
        "api.telegram.org",
        443,
        "POST",
        f"/bot{SECRET}/sendMessage",
        "HTTP/1.1",
        200,
        12,
    )
    logging.getLogger("aiohttp.client").debug("GET %s", f"http://u:{SECRET}@h/?k={SECRET}")
    try:
        raise ValueError(f"bad url http://u:{SECRET}@h/")
    except ValueError:
        logging.getLogger("vaktpost.x").exception("failed", extra={"url": f"http://h/?t={SECRET}"})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records[0]["msg"] == 'https://api.telegram.org:443 "POST /*** HTTP/1.1" 200 12'
    assert records[1]["msg"] == "GET http://***@h/?k=***"
    assert records[2]["url"] == "http://h/?t=***"
    assert "ValueError: bad url http://***@h/" in records[2]["exception"]
    assert SECRET not in stream.getvalue()


def test_printable_neutralises_terminal_escapes() -> None:
    assert printable("kim\x1b[2J\x1b]0;owned\x07\n") == "kim\\x1b[2J\\x1b]0;owned\\x07\\x0a"
    assert printable("Åsa Öberg") == "Åsa Öberg"
