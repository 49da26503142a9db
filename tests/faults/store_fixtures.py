"""A real daemon as a subprocess for the store fault tests: its config, HTTP, metrics, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.alerting_fixtures import ROOT, ladder_config, vaktpost_cmd
from tests.conftest import free_port

AGENT = "fault"


def write_config(
    path: Path,
    state: Path,
    hook: str,
    closed: int,
    steps: tuple[float, ...] = (0.0,),
    repeat: float | None = None,
) -> int:
    """Writes the config; returns the agent's port."""
    port = free_port()
    path.write_text(
        ladder_config(
            name=AGENT, port=port, state=state, hook=hook, closed=closed, steps=steps, repeat=repeat
        )
    )
    return port


def incident_id(dedup_key: str) -> int:
    return int(dedup_key.split("/")[3])


class StoreDaemon:
    """`vaktpost run` with its stderr in a file; nothing waited for here (the tests poll)."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                vaktpost_cmd("run", "-c", str(config)),
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def listening(self) -> bool:
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def metric(self, name: str) -> float | None:
        _status, body = self.get("/metrics")
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        return None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"level": "raw", "msg": line})
        return out

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
