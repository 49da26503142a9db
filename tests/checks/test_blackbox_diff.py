"""Differential test: vaktpost's verdicts against blackbox_exporter's for the same targets.

For every target both probe it; up/down, the HTTP status code and the earliest
certificate expiry in the presented chain must agree. Where vaktpost differs by
design, the case says so in `differs` and that field is not compared.
"""

from __future__ import annotations

import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks.base import CheckConfig, Status
from checks.dns import DnsConfig
from checks.http import HttpConfig
from checks.tcp import TcpConfig
from tests.helpers import free_port, http_request, require_binary, wait_until
from tests.net_certs import Pki
from tests.net_dns import DnsServer, running_dns
from tests.net_fixtures import probe
from tests.net_servers import Targets

BB_CONFIG = """
modules:
  http_ca:
    prober: http
    timeout: 3s
    http: {{preferred_ip_protocol: ip4, tls_config: {{ca_file: {ca}}}}}
  http_system:
    prober: http
    timeout: 3s
    http: {{preferred_ip_protocol: ip4}}
  tcp:
    prober: tcp
    timeout: 3s
    tcp: {{preferred_ip_protocol: ip4}}
  dns_a:
    prober: dns
    timeout: 3s
    dns: {{query_name: agent.test, query_type: A, preferred_ip_protocol: ip4}}
  dns_nx:
    prober: dns
    timeout: 3s
    dns: {{query_name: nope.test, query_type: A, preferred_ip_protocol: ip4}}
"""


@dataclass
class Blackbox:
    port: int

    def probe(self, module: str, target: str) -> dict[str, float]:
        query = urllib.parse.urlencode({"module": module, "target": target})
        url = f"http://127.0.0.1:{self.port}/probe?{query}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.fixture(scope="module")
def blackbox(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blackbox]:
    binary = require_binary("prometheus-blackbox-exporter")
    directory: Path = tmp_path_factory.mktemp("bb")
    (directory / "bb.yml").write_text(BB_CONFIG.format(ca=pki.ca_file))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={directory / 'bb.yml'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: http_request(f"http://127.0.0.1:{port}/-/healthy", timeout=1)[0] == 200,
            what="blackbox_exporter ready",
        )
        yield Blackbox(port)
    finally:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with running_dns() as server:
        yield server


@dataclass
class Case:
    id: str
    kind: str  # http_ca | http_system | tcp | dns_a | dns_nx
    target: str  # a template filled from Targets / DnsServer
    up: bool
    differs: dict[str, str] = field(default_factory=dict)  # field -> why it differs


CASES = [
    Case("200", "http_ca", "http://127.0.0.1:{http}/ok", True),
    Case("500", "http_ca", "http://127.0.0.1:{http}/status/500", False),
    Case("404", "http_ca", "http://127.0.0.1:{http}/nothing-here", False),
    Case("redirect-chain", "http_ca", "http://127.0.0.1:{http}/redirect/3", True),
    Case("redirect-loop", "http_ca", "http://127.0.0.1:{http}/loop/a", False),
    Case("valid-ca-file", "http_ca", "https://localhost:{tls[valid]}/ok", True),
    Case("untrusted-root", "http_system", "https://localhost:{tls[valid]}/ok", False),
    Case("expired", "http_ca", "https://localhost:{tls[expired]}/ok", False),
    Case("not-yet-valid", "http_ca", "https://localhost:{tls[notyet]}/ok", False),
    Case("wrong-host", "http_ca", "https://localhost:{tls[wronghost]}/ok", False),
    Case("self-signed", "http_ca", "https://localhost:{tls[selfsigned]}/ok", False),
    Case(
        "intermediate-expires-in-5-days",
        "http_ca",
        "https://localhost:{tls[short_chain]}/ok",
        False,
        {"up": "vaktpost applies tls.critical_days (7); blackbox has no expiry threshold"},
    ),
    Case("tcp-open", "tcp", "127.0.0.1:{http}", True),
    Case("tcp-closed", "tcp", "127.0.0.1:{closed}", False),
    Case("dns-a", "dns_a", "127.0.0.1:{dns}", True),
    Case("dns-nxdomain", "dns_nx", "127.0.0.1:{dns}", False),
]


def fill(case: Case, t: Targets, dns: DnsServer) -> str:
    return case.target.format(http=t.http, tls=t.tls, closed=t.closed, dns=dns.port)


def vaktpost_config(
    case: Case, target: str, pki: Pki
) -> tuple[type[CheckConfig], dict[str, object]]:
    if case.kind.startswith("http"):
        tls = {"ca_file": str(pki.ca_file)} if case.kind == "http_ca" else {}
        return HttpConfig, {"type": "http", "url": target, "tls": tls}
    host, port = target.rsplit(":", 1)
    if case.kind == "tcp":
        return TcpConfig, {"type": "tcp", "host": host, "port": int(port)}
    name = "agent.test" if case.kind == "dns_a" else "nope.test"
    return DnsConfig, {"type": "dns", "server": target, "query": name}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_same_verdict_as_blackbox(
    case: Case, blackbox: Blackbox, targets: Targets, dns_server: DnsServer, pki: Pki
) -> None:
    target = fill(case, targets, dns_server)
    bb = blackbox.probe(case.kind, target)
    model, keys = vaktpost_config(case, target, pki)
    ours = await probe(model, **keys)
    our_up = ours.status in (Status.OK, Status.WARNING)

    assert our_up is case.up, ours.message
    if "up" in case.differs:
        assert (bb["probe_success"] == 1.0) is not case.up
    else:
        assert (bb["probe_success"] == 1.0) is case.up, f"blackbox disagrees: {bb}"
    if "probe_http_status_code" in bb and bb["probe_http_status_code"] > 0:
        assert ours.facts["status_code"] == bb["probe_http_status_code"]
    if "probe_ssl_earliest_cert_expiry" in bb:
        assert ours.facts["tls_earliest_not_after"] == bb["probe_ssl_earliest_cert_expiry"]
    elif target.startswith("https") and "tls_earliest_not_after" in ours.facts:
        # blackbox drops all TLS metrics when verification fails; vaktpost keeps the
        # dates it saw in the handshake so an expired certificate still says when.
        assert not case.up
