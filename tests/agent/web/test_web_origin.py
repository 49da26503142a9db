"""Without `agent.web.users`, writes are accepted only from loopback. A real client in
a network namespace of its own, over a veth pair, is refused with 403; reads work.

The namespace and veth names are unique per run and always removed (root needed;
CI runs as root; elsewhere the test skips).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from agent.config import WebConfig
from agent.web.auth import is_loopback, require_operator
from tests.alerting_fixtures import http_get
from tests.helpers import daemon, free_port, require_binary, skip_or_fail, wait_until


@dataclass(frozen=True)
class Veth:
    ns: str
    host_ip: str  # the host side of the pair, in our namespace
    ns_ip: str  # the far side, inside `ns`


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def veth() -> Iterator[Veth]:
    require_binary("ip")
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root (CI runs as root)")
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"vpo-{tag}", f"vph{tag}", f"vpn{tag}"
    octet = int(tag[:2], 16)
    net = Veth(ns, f"10.213.{octet}.1", f"10.213.{octet}.2")
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{net.host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{net.ns_ip}/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", ns_if, "up")
        yield net
    finally:
        # Deleting the namespace destroys its end of the pair, and with it ours.
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)


CLIENT = textwrap.dedent(
    """
    import json, sys, urllib.error, urllib.request
    out = []
    for method, url, body, auth in json.loads(sys.argv[1]):
        req = urllib.request.Request(url, data=body and json.dumps(body).encode(), method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                out.append([r.status, r.read().decode()])
        except urllib.error.HTTPError as e:
            out.append([e.code, e.read().decode()])
    print(json.dumps(out))
    """
)


def client_argv(net: Veth, requests: list[list[Any]]) -> list[str]:
    """Runs the requests from inside the namespace: their source is net.ns_ip."""
    return ["ip", "netns", "exec", net.ns, sys.executable, "-c", CLIENT, json.dumps(requests)]


def parse(stdout: str) -> list[tuple[int, Any]]:
    """(status, body): the body decoded as JSON where it is JSON, else the text."""
    out = []
    for status, body in json.loads(stdout):
        try:
            out.append((status, json.loads(body)))
        except ValueError:
            out.append((status, body))
    return out


def from_namespace(net: Veth, requests: list[list[Any]]) -> list[tuple[int, Any]]:
    argv = client_argv(net, requests)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
    return parse(done.stdout)


async def from_namespace_async(net: Veth, requests: list[list[Any]]) -> list[tuple[int, Any]]:
    """The same, without blocking this event loop (it serves the other end)."""
    proc = await asyncio.create_subprocess_exec(
        *client_argv(net, requests), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    return parse(stdout.decode())


CONFIG = """
agent:
  name: origin
  listen: {host}:{port}
  state_dir: {state}
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 1}}
channels:
  log: {{type: log, default: true}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: 1}}
"""
SILENCE = {"matchers": {"check": "app"}, "duration_seconds": 600, "comment": "x"}
BASIC = "Basic b3BzOnNlY3JldA=="  # ops:secret -- no users configured: must not matter


def test_daemon_refuses_writes_from_another_namespace(veth: Veth, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://{veth.host_ip}:{port}"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.format(host=veth.host_ip, port=port, state=tmp_path / "s"))
    log = tmp_path / "daemon.log"
    with daemon(cfg, log) as proc:

        def incident_open() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            status, body = http_get(base + "/api/v1/incidents?state=open")
            return status == 200 and [i["id"] for i in json.loads(body)["incidents"]] == [1]

        wait_until(incident_open, 15, "the agent on the veth address with incident 1")
        results = from_namespace(
            veth,
            [
                ["POST", f"{base}/api/v1/silences", SILENCE, None],
                ["POST", f"{base}/api/v1/incidents/1/ack", {"by": "mallory"}, None],
                ["DELETE", f"{base}/api/v1/silences/1", None, None],
                ["POST", f"{base}/api/v1/silences", SILENCE, BASIC],
                ["GET", f"{base}/api/v1/silences", None, None],
                ["GET", f"{base}/api/v1/incidents?state=open", None, None],
            ],
        )
        for status, body in results[:4]:
            assert status == 403, (status, body)
            assert body == {"error": "writes are accepted from loopback only"}
        (s_status, silences), (i_status, incidents) = results[4:]
        assert s_status == 200 and silences == {"silences": []}, "reads stay open"
        assert i_status == 200
        (incident,) = incidents["incidents"]
        assert incident["acknowledged_by"] is None, "the refused ack changed nothing"

        # Our own non-loopback address is not loopback either.
        req = urllib.request.Request(
            base + "/api/v1/silences", data=json.dumps(SILENCE).encode(), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=5)
        refused.value.close()
        assert refused.value.code == 403


async def test_origin_rule_on_one_server_bound_to_loopback_and_the_veth(veth: Veth) -> None:
    """The same handler, reached from loopback (allowed) and from the namespace (403)."""

    async def write(request: web.Request) -> web.Response:
        await require_operator(request, WebConfig())
        return web.json_response({"remote": request.remote})

    app = web.Application()
    app.router.add_post("/w", write)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    sites = [web.TCPSite(runner, host, port) for host in ("127.0.0.1", "::1", veth.host_ip)]
    try:
        for site in sites:
            await site.start()
        async with ClientSession() as session:
            for host in ("127.0.0.1", "[::1]"):
                async with session.post(f"http://{host}:{port}/w") as response:
                    assert response.status == 200, await response.text()
        url = f"http://{veth.host_ip}:{port}/w"
        results = await from_namespace_async(veth, [["POST", url, None, None]])
        ((status, body),) = results
        assert status == 403 and "loopback only" in body
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4 on a dual-stack listener
        ("::ffff:10.213.0.2", False),
        ("10.213.0.2", False),
        ("fe80::1%eth0", False),
        ("", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_is_loopback(remote: str | None, loopback: bool) -> None:
    assert is_loopback(remote) is loopback
