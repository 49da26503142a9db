"""link check: quorum over real loopback targets of every kind; 0, 1, 2 of 3 failing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from checks.base import Status
from checks.link import LinkConfig
from tests.net_dns import DnsServer, running_dns
from tests.net_fixtures import probe
from tests.net_servers import Targets, require


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with running_dns() as server:
        yield server


def three(targets: Targets, dns_server: DnsServer, failing: int) -> list[str]:
    good = [
        f"tcp://127.0.0.1:{targets.http}",
        targets.url("/ok"),
        f"dns://127.0.0.1:{dns_server.port}/agent.test",
    ]
    bad = [
        f"tcp://127.0.0.1:{targets.closed}",
        targets.url("/status/503"),
        f"dns://127.0.0.1:{dns_server.port}/nope.test",
    ]
    return bad[:failing] + good[failing:]


@pytest.mark.parametrize(
    ("failing", "status"),
    [(0, Status.OK), (1, Status.OK), (2, Status.CRITICAL)],
)
async def test_quorum_of_three(
    targets: Targets, dns_server: DnsServer, failing: int, status: Status
) -> None:
    urls = three(targets, dns_server, failing)
    r = await probe(LinkConfig, type="link", targets=urls, quorum=2)
    assert r.status is status, r.message
    assert r.facts["targets_up"] == 3 - failing
    assert r.facts["targets_total"] == 3
    assert [r.facts[f"target_{i}_up"] for i in range(3)] == [0.0] * failing + [1.0] * (3 - failing)
    for url in urls[:failing]:
        assert url in r.message  # the failed ones are named


async def test_failure_reasons_come_from_the_probes(
    targets: Targets, dns_server: DnsServer
) -> None:
    r = await probe(LinkConfig, type="link", targets=three(targets, dns_server, 3), quorum=1)
    assert r.status is Status.CRITICAL
    assert "uplink down: 0/3 reachable, quorum 1" in r.message
    assert "connection refused" in r.message
    assert "returned 503" in r.message
    assert "NXDOMAIN" in r.message


async def test_icmp_and_https_targets(targets: Targets, pki: object) -> None:
    require(os.geteuid() == 0, "root (privileged ICMP)")
    r = await probe(
        LinkConfig,
        type="link",
        targets=["icmp://127.0.0.1", targets.tls_url("valid")],
        quorum=2,
    )
    # https targets verify against the system CAs: the test root is not one of them
    assert r.status is Status.CRITICAL
    assert r.facts["target_0_up"] == 1
    assert "not trusted" in r.message


async def test_silent_target_named_within_the_link_timeout(targets: Targets) -> None:
    r = await probe(
        LinkConfig,
        type="link",
        targets=[f"http://127.0.0.1:{targets.silent}/", targets.url("/ok")],
        timeout="500ms",
    )
    assert r.status is Status.OK
    assert f"http://127.0.0.1:{targets.silent}/ (timed out" in r.message


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("ftp://x", "unsupported kind"),
        ("tcp://127.0.0.1", "tcp targets need a port"),
        ("dns://127.0.0.1", "dns targets name what to ask"),
        ("dns://[::1]:53/x?type=BOGUS", "record_type"),
        ("tcp:///", "no host"),
    ],
)
def test_bad_targets(target: str, error: str) -> None:
    with pytest.raises(ValidationError) as info:
        LinkConfig.model_validate({"name": "l", "type": "link", "targets": [target]})
    assert error in str(info.value)
