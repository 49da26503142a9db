"""Every CLI error is one line, exit 2 (usage) or 3 (cannot run); never a traceback.

Also: what an agent returns (an ack's `by`) cannot drive the terminal (issue 9, 11 and 12).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import ROOT, VAKTPOST, free_port, wait_until

EVIL = "\x1b[2J\x1b]0;pwned\x07kim\r\nfake line"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VAKTPOST, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def memory_config(tmp: Path, agent: str) -> Path:
    config = tmp / "c.yaml"
    config.write_text(f"agent: {agent}\nchecks: [{{name: m, type: memory}}]\n")
    return config


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["silence", "--match", "check=x", "--for", "90"],
            "vaktpost silence: argument --for: invalid duration: use a number with a unit",
        ),
        (["ack", "١"], "vaktpost ack: argument INCIDENT_ID: an incident id is a number"),
        (["ack", " 1"], "vaktpost ack: argument INCIDENT_ID: an incident id is a number"),
        (["nope"], "vaktpost: argument command: invalid choice: 'nope'"),
        (["check"], "vaktpost check: the following arguments are required: -c/--config"),
    ],
)
def test_usage_errors_exit_2_in_one_line(args: list[str], expected: str) -> None:
    assert one_line_error(run_cli(*args), 2).startswith(expected)


def test_check_with_an_unusable_state_dir_exits_3(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    config = memory_config(tmp_path, f"{{state_dir: {tmp_path}/file/state}}")
    line = one_line_error(run_cli("check", "-c", str(config)), 3)
    assert line.startswith("vaktpost check: cannot open state store ")
    assert "not a directory" in line.lower()


def test_check_with_an_invalid_config_exits_3_not_warning(tmp_path: Path) -> None:
    config = memory_config(tmp_path, "{max_concurrency: 0}")
    line = one_line_error(run_cli("check", "-c", str(config)), 3)
    assert line.startswith(f"{config}:1: agent.max_concurrency: ")


def test_readiness_with_an_unusable_state_dir_exits_3(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    config = memory_config(tmp_path, f"{{state_dir: {tmp_path}/file/state}}")
    line = one_line_error(run_cli("readiness", "-c", str(config)), 3)
    assert line.startswith("cannot read the state store: ")


def test_status_of_an_agent_that_is_not_there_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(run_cli("status", "--url", url), 3)
    assert line == f"vaktpost status: cannot reach {url}: connection refused"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"agent: {{listen: 127.0.0.1:{port}, state_dir: {tmp_path}/state, language: en,\n"
        "        defaults: {interval: 300ms, timeout: 1s, failures_before_alert: 1}}\n"
        "channels: {ops: {type: log}}\n"
        f"checks: [{{name: app, type: tcp, host: 127.0.0.1, port: {free_port()}}}]\n"
        "departments:\n"
        "  - id: dept\n"
        "    systems: [{id: app, checks: [app], rto: 1h}]\n"
        "    escalation: [{after: 0s, notify: [ops]}]\n"
    )
    proc = subprocess.Popen(
        [*VAKTPOST, "run", "-c", str(config)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_incidents(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(url + "/api/v1/incidents?state=open", timeout=5) as r:
        incidents: list[dict[str, object]] = json.loads(r.read())["incidents"]
        return incidents


class FakeAgent(ThreadingHTTPServer):
    """The agent's API answering with a `by` no real agent accepts any more: the CLI must
    not trust the server to have refused it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeApi)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


INCIDENT = {
    "id": 7,
    "department": "dept",
    "system": "app",
    "status": "acknowledged",
    "downtime_seconds": 60,
    "current_step": 1,
    "next_step_due": None,
    "acknowledged_by": EVIL,
}


class _FakeApi(BaseHTTPRequestHandler):
    def _send(self, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"incidents": [INCIDENT]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(INCIDENT)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def fake_agent() -> Iterator[str]:
    server = FakeAgent()
    yield server.url
    server.shutdown()
    server.server_close()


def test_status_and_ack_print_an_evil_by_escaped(fake_agent: str) -> None:
    shown = "\\x1b[2J\\x1b]0;pwned\\x07kim\\x0d\\x0afake line"
    ack = run_cli("ack", "7", "--url", fake_agent, "--by", "kim")
    assert ack.returncode == 0, ack.stderr
    assert ack.stdout == f"incident 7 acknowledged by {shown}\n"
    status = run_cli("status", "--url", fake_agent)
    assert status.returncode == 1, status.stderr
    assert not any(c in status.stdout for c in "\x1b\x07\r")
    header, row = status.stdout.splitlines()  # the newline in `by` made no extra row
    assert header.split()[0] == "ID"
    assert row.endswith(shown)


def test_a_real_agent_refusing_an_ack_is_one_line_exit_2(agent: str) -> None:
    (incident,) = wait_until(lambda: open_incidents(agent), timeout=30, what="an incident")
    line = one_line_error(run_cli("ack", str(incident["id"]), "--url", agent, "--by", EVIL), 2)
    assert line.startswith(f"vaktpost ack: POST /api/v1/incidents/{incident['id']}/ack: HTTP 400")
    assert "\x1b" not in line


def test_ack_of_an_unknown_incident_is_a_usage_error(agent: str) -> None:
    wait_until(lambda: open_incidents(agent), timeout=30, what="an incident")
    line = one_line_error(run_cli("ack", "999999", "--url", agent), 2)
    assert line.startswith("vaktpost ack: POST /api/v1/incidents/999999/ack: HTTP 404")
