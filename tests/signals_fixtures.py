"""Helpers for the signals-in tests (push, alert, prometheus, cert_file): a daemon, raw HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.alerting_fixtures import ROOT, http_get, vaktpost_cmd, wait_for


def send(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], str]:
    """(status, JSON body or {}, raw text) with exactly the given headers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        raw = resp.read().decode()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return resp.status, data if isinstance(data, dict) else {}, raw
    finally:
        conn.close()


def checks_of(base: str) -> dict[str, dict[str, Any]]:
    status, text = http_get(base + "/api/v1/checks")
    assert status == 200, text
    return {c["name"]: c for c in json.loads(text)["checks"]}


def status_of(base: str, name: str) -> str | None:
    status = checks_of(base)[name]["status"]
    return None if status is None else str(status)


@contextlib.contextmanager
def signal_daemon(
    cfg: Path, log: Path, base: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`vaktpost run` with extra environment; yields once /readyz answers."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            vaktpost_cmd("run", "-c", str(cfg), "--log-level", "debug"),
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            return http_get(base + "/readyz")[0] == 200

        wait_for(up, 15, "daemon ready")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def received_kinds(bodies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(status, dedup key) of every notification a webhook receiver got."""
    return [(str(b.get("status")), str(b.get("dedup_key"))) for b in list(bodies)]
