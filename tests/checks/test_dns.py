"""dns check against a dnspython server on loopback (UDP and TCP, IPv4 and IPv6)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from checks.base import CheckResult, Status
from checks.dns import DnsConfig, parse_server
from tests.net_dns import DnsServer, running_dns
from tests.net_fixtures import probe
from tests.net_servers import require


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with running_dns() as server:
        yield server


async def ask(srv: DnsServer, query: str, record_type: str = "A", **keys: object) -> CheckResult:
    keys.setdefault("server", f"127.0.0.1:{srv.port}")
    return await probe(DnsConfig, type="dns", query=query, record_type=record_type, **keys)


@pytest.mark.parametrize(
    ("query", "rtype", "expect", "shown"),
    [
        ("agent.test", "A", ["127.0.0.1"], "127.0.0.1"),
        ("agent.test", "AAAA", ["::1"], "::1"),
        ("agent.test", "MX", ["10 mail.agent.test"], "10 mail.agent.test."),
        ("agent.test", "TXT", ["/^v=spf1/"], "v=spf1 -all"),
        ("agent.test", "NS", ["ns1.agent.test."], "ns1.agent.test."),
        ("agent.test", "SOA", ["/hostmaster/"], "hostmaster.agent.test."),
        ("www.agent.test", "CNAME", ["agent.test"], "agent.test."),
        ("1.0.0.127.in-addr.arpa", "PTR", ["agent.test"], "agent.test."),
    ],
)
async def test_record_types(
    dns_server: DnsServer, query: str, rtype: str, expect: list[str], shown: str
) -> None:
    r = await ask(dns_server, query, rtype, expect=expect)
    assert r.status is Status.OK, r.message
    assert shown in r.message
    assert r.facts["answers"] >= 1
    assert r.facts["rcode"] == 0


async def test_expected_value_missing(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "multi.test", expect=["127.0.0.2", "127.0.0.9"])
    assert r.status is Status.CRITICAL
    assert "lacks 127.0.0.9" in r.message
    assert r.facts["answers"] == 2


async def test_nxdomain(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "nope.test")
    assert r.status is Status.CRITICAL
    assert "nope.test does not exist (NXDOMAIN)" in r.message
    assert r.facts["rcode"] == 3


async def test_servfail(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "servfail.test")
    assert r.status is Status.CRITICAL
    assert "answered SERVFAIL for servfail.test A" in r.message


async def test_no_answer(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "empty.test")
    assert r.status is Status.CRITICAL
    assert "no empty.test A record (empty answer)" in r.message
    allowed = await ask(dns_server, "empty.test", allow_empty=True)
    assert allowed.status is Status.OK


async def test_timeout_is_reported_by_the_check(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "silent.test", timeout="500ms")
    assert r.status is Status.CRITICAL
    assert "no answer from" in r.message and "within 0.5s" in r.message


async def test_tcp(dns_server: DnsServer) -> None:
    r = await ask(dns_server, "agent.test", protocol="tcp", expect=["127.0.0.1"])
    assert r.status is Status.OK, r.message


async def test_ipv6_server_address(dns_server: DnsServer) -> None:
    require(dns_server.port6 != 0, "IPv6 loopback")
    r = await ask(dns_server, "agent.test", server=f"[::1]:{dns_server.port6}")
    assert r.status is Status.OK, r.message


async def test_server_not_listening(dns_server: DnsServer) -> None:
    from tests.net_servers import closed_port

    r = await ask(dns_server, "agent.test", protocol="tcp", server=f"127.0.0.1:{closed_port()}")
    assert r.status is Status.CRITICAL
    assert "failed" in r.message


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("[::1]", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("ns.example", ("ns.example", 53)),
    ],
)
def test_parse_server(text: str, parsed: tuple[str, int]) -> None:
    assert parse_server(text) == parsed


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"server": "::1:53x"}, "write IPv6 with a port as [::1]:53"),
        ({"server": "1.2.3.4:99999"}, "port out of range"),
        ({"server": "1.2.3.4", "record_type": "SRVX"}, "record_type"),
        ({"server": "1.2.3.4", "expect": ["/(/"]}, "invalid regex"),
        ({"server": "1.2.3.4", "protocol": "doh"}, "protocol"),
    ],
)
def test_config_errors(keys: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        DnsConfig.model_validate({"name": "x", "type": "dns", "query": "a.test", **keys})
    assert error in str(info.value)
