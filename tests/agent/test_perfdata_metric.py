"""`command` perfdata reaches /metrics as vaktpost_check_perfdata{check,label,unit}.

Real plugins on loopback: a small shell plugin whose output the test rewrites,
and monitoring-plugins' check_tcp against a listening loopback socket. The
daemon is scraped over HTTP.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerting_fixtures import http_get, metric_value
from tests.helpers import daemon, free_port, require_binary, wait_until

CONFIG = """
agent:
  name: perf
  listen: 127.0.0.1:{port}
  state_dir: {state}
  defaults: {{interval: 200ms, timeout: 5s}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: script, type: command, argv: ["{script}"]}}
  - name: tcp-plugin
    type: command
    argv: ["{check_tcp}", "-H", "127.0.0.1", "-p", "{listener}"]
"""

PLUGIN = """#!/bin/sh
cat "{output}"
"""


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # check_tcp only connects; the backlog answers it
        yield int(sock.getsockname()[1])


def series(check: str, label: str, unit: str) -> str:
    return f'vaktpost_check_perfdata{{check="{check}",label="{label}",unit="{unit}"}}'


def test_perfdata_of_real_plugins_is_scraped(tmp_path: Path, listener: int) -> None:
    check_tcp = require_binary("/usr/lib/nagios/plugins/check_tcp")
    output = tmp_path / "output.txt"
    output.write_text("OK - fine | time=0.5s;1;2;0; size=1024B 'in use'=12%;;\n")
    script = tmp_path / "plugin.sh"
    script.write_text(PLUGIN.format(output=output))
    script.chmod(0o755)
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port,
            state=tmp_path / "s",
            script=script,
            check_tcp=check_tcp,
            listener=listener,
        )
    )
    log = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    with daemon(cfg, log) as proc:

        def scraped(*wanted: str) -> str | None:
            assert proc.poll() is None, log.read_text()[-3000:]
            status, text = http_get(base + "/metrics")
            return text if status == 200 and all(w in text for w in wanted) else None

        text = wait_until(
            lambda: scraped(series("script", "time", "s"), series("tcp-plugin", "time", "s")),
            20,
            "perfdata of both plugins",
        )
        assert "# TYPE vaktpost_check_perfdata gauge" in text
        # Values in the plugin's own unit, as printed; the unit is a label.
        assert metric_value(text, series("script", "time", "s")) == 0.5
        assert metric_value(text, series("script", "size", "B")) == 1024.0
        assert metric_value(text, series("script", "in use", "%")) == 12.0
        took = metric_value(text, series("tcp-plugin", "time", "s"))
        assert took is not None and 0 <= took < 5

        # Rendered from the latest result: a label the plugin stops printing goes.
        output.write_text("OK - fine | time=250ms;;\n")
        text = wait_until(lambda: scraped(series("script", "time", "ms")), 20, "the new perfdata")
        assert metric_value(text, series("script", "time", "ms")) == 250.0
        assert series("script", "size", "B") not in text
        assert series("script", "time", "s") not in text
