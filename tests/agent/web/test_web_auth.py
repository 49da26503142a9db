"""agent.web.users: reads open or behind a login, writes (reload) need an operator."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.agent.test_daemon import Daemon
from tests.helpers import ROOT, VAKTPOST, free_port, wait_until


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def call(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Daemon]:
    # Few bcrypt rounds keep the test fast; the check is the same code.
    ops = bcrypt.hashpw(b"ops-secret", bcrypt.gensalt(rounds=4)).decode()
    viewer = bcrypt.hashpw(b"view-secret", bcrypt.gensalt(rounds=4)).decode()
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"agent:\n  listen: 127.0.0.1:{port}\n  state_dir: {tmp_path}/s\n"
        "  web:\n    read_requires_auth: true\n    users:\n"
        f"      ops: {{password_hash: '{ops}', role: operator}}\n"
        f"      soc: {{password_hash: '{viewer}', role: viewer}}\n"
        "checks: [{name: mem, type: memory, interval: 1s}]\n"
    )
    with Daemon(config, port) as d:
        yield d


def test_reads_need_a_login_when_configured(secured: Daemon) -> None:
    port = secured.port
    assert call(port, "GET", "/healthz", {})[0] == 200  # liveness stays open
    for path in ("/metrics", "/api/v1/checks", "/", "/api/v1/departments", "/api/v1/incidents"):
        status, headers = call(port, "GET", path, {})
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Basic realm="vaktpost"'
        assert call(port, "GET", path, basic("soc", "wrong"))[0] == 401, path
        assert call(port, "GET", path, basic("soc", "view-secret"))[0] == 200, path


def test_reload_needs_an_operator(secured: Daemon) -> None:
    port = secured.port
    js = {"Content-Type": "application/json"}  # every write declares JSON (docs/security.md)
    assert call(port, "POST", "/-/reload", js)[0] == 401
    assert call(port, "POST", "/-/reload", {**js, **basic("soc", "view-secret")})[0] == 403
    assert call(port, "POST", "/-/reload", {**js, **basic("ops", "ops-secret")})[0] == 200
    log = secured.log.read_text()
    assert "ops-secret" not in log and "view-secret" not in log
    reloads = [json.loads(line) for line in log.splitlines() if "config reloaded" in line]
    assert len(reloads) == 1


def test_https_with_the_configured_certificate(tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "agent.pem"))
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"agent:\n  listen: 127.0.0.1:{port}\n  state_dir: {tmp_path}/s\n"
        f"  web: {{tls_cert_file: {tmp_path}/agent.pem, tls_key_file: {tmp_path}/agent.pem}}\n"
    )
    proc = subprocess.Popen([*VAKTPOST, "run", "-c", str(config)], cwd=ROOT, stderr=subprocess.PIPE)
    context = ssl.create_default_context()
    ca.configure_trust(context)

    def healthz() -> int:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", timeout=5, context=context
        ) as resp:
            return int(resp.status)

    try:
        assert wait_until(healthz, what="the HTTPS listener") == 200
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_unreadable_certificate_fails_start_with_a_reason(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"agent:\n  listen: 127.0.0.1:{free_port()}\n  state_dir: {tmp_path}/s\n"
        f"  web: {{tls_cert_file: {tmp_path}/none.pem, tls_key_file: {tmp_path}/none.pem}}\n"
    )
    proc = subprocess.run(
        [*VAKTPOST, "run", "-c", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "cannot load agent.web TLS certificate" in proc.stderr
