"""Footprint (issue 10): what start-up must not import.

Every module imported stays in RSS for the process's life, and `vaktpost
--help` pays for each in wall time. Measured figures are in docs/performance.md
(bench/footprint.py); these tests keep the levers from silently coming undone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, free_port

_HELP = """
import contextlib, io, json, sys
from agent.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""

# The daemon as `vaktpost run` builds it (agent/daemon.py serve), up to a started agent.
_DAEMON = """
import asyncio, json, sys
from agent.configload import read_config
from agent.daemon import Agent

async def main() -> None:
    agent = Agent(read_config(sys.argv[1]), sys.argv[1])
    await agent.startup()
    await agent.shutdown()

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def _modules(code: str, *args: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    names = json.loads(out.splitlines()[-1])
    return {*names, *(name.split(".")[0] for name in names)}


def test_help_imports_no_event_loop_and_no_schema() -> None:
    loaded = _modules(_HELP)
    assert "argparse" in loaded  # the script did build the parser
    heavy = {"asyncio", "pydantic", "aiohttp", "yaml", "urllib.request"} & loaded
    assert not heavy, f"vaktpost --help imports {sorted(heavy)}"


def test_daemon_on_the_default_config_leaves_unused_dependencies_unloaded(
    tmp_path: Path,
) -> None:
    default = (ROOT / "agent" / "default.yaml").read_text(encoding="utf-8")
    # The same check types on loopback only: its uplink's targets are public resolvers.
    found = re.search(r"^\s*targets: \[(.*)\]$", default, re.MULTILINE)
    assert "127.0.0.1:9730" in default and found is not None
    uplink = found.group(1)
    ports: set[int] = set()
    while len(ports) < 3:  # three distinct targets: a target listed twice is refused
        ports.add(free_port())
    closed = ", ".join(f'"tcp://127.0.0.1:{port}"' for port in sorted(ports))
    text = default.replace("127.0.0.1:9730", f"127.0.0.1:{free_port()}")
    config = tmp_path / "default.yaml"
    config.write_text(text.replace(uplink, closed))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    loaded = _modules(_DAEMON, str(config), env=env)
    assert {"aiohttp", "pydantic", "sqlite3"} <= loaded  # it did start the agent
    # psycopg (~9 MiB): only agent.store; Jinja2: the first console page; bcrypt: a login.
    unused = {"psycopg", "psycopg_pool", "jinja2", "bcrypt"} & loaded
    assert not unused, f"the default agent imports {sorted(unused)}"


def test_defaults_fill_the_loaded_check_models_without_copying_them() -> None:
    from agent.configload import load_config_text

    text = (
        "agent: {defaults: {interval: 45s, timeout: 3s, failures_before_alert: 4}}\n"
        "checks:\n"
        "  - {name: a, type: tcp, host: 127.0.0.1, port: 1}\n"
        "  - {name: b, type: tcp, host: 127.0.0.1, port: 1, interval: 5s}\n"
    )
    a, b = load_config_text(text, "<test>").checks
    assert (a.interval, a.timeout, a.failures_before_alert) == (45.0, 3.0, 4)
    assert (b.interval, b.timeout) == (5.0, 3.0)
    # A copy per check (model_copy) also grew each fields-set: ~0.5 KiB a check.
    assert a.model_fields_set == {"name", "type", "host", "port"}
    assert b.model_fields_set == {"name", "type", "host", "port", "interval"}
