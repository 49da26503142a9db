"""tcp check with `tls:` against real TLS servers: same facts and verdicts as http."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from checks.base import CheckResult, Status
from checks.tcp import TcpConfig
from checks.tls import TlsOptions
from tests.net_certs import Pki
from tests.net_fixtures import probe
from tests.net_servers import Targets


async def tcp_tls(targets: Targets, pki: Pki, name: str, **keys: object) -> CheckResult:
    tls = keys.pop("tls", {"ca_file": str(pki.ca_file)})
    return await probe(
        TcpConfig, type="tcp", host="localhost", port=targets.tls[name], tls=tls, **keys
    )


async def test_valid_certificate_facts(targets: Targets, pki: Pki) -> None:
    r = await tcp_tls(targets, pki, "valid")
    assert r.status is Status.OK, r.message
    assert r.facts["tls_not_after"] == pki.certs["valid"].leaf.not_after
    assert r.facts["tls_earliest_not_after"] == pki.certs["valid"].earliest_not_after
    assert r.facts["tls_seconds"] > 0


async def test_send_and_expect_over_tls(targets: Targets, pki: Pki) -> None:
    r = await tcp_tls(
        targets,
        pki,
        "valid",
        send=r"GET /ok HTTP/1.0\r\nHost: localhost\r\n\r\n",
        expect=r"HTTP/1\.[01] 200",
    )
    assert r.status is Status.OK, r.message


async def test_expired_is_critical(targets: Targets, pki: Pki) -> None:
    r = await tcp_tls(targets, pki, "expired")
    assert r.status is Status.CRITICAL
    assert "certificate expired 3 days ago" in r.message
    assert r.facts["tls_not_after"] == pki.certs["expired"].leaf.not_after


async def test_tls_true_uses_system_cas(targets: Targets, pki: Pki) -> None:
    r = await tcp_tls(targets, pki, "valid", tls=True)
    assert r.status is Status.CRITICAL
    assert "is not trusted" in r.message


async def test_expiring_is_warning(targets: Targets, pki: Pki) -> None:
    r = await tcp_tls(targets, pki, "expiring")
    assert r.status is Status.WARNING
    assert "certificate expires in" in r.message


async def test_tls_to_a_plain_port_fails_clearly(targets: Targets) -> None:
    r = await probe(TcpConfig, type="tcp", host="127.0.0.1", port=targets.http, tls=True)
    assert r.status is Status.CRITICAL
    assert "TLS handshake with 127.0.0.1 failed" in r.message


async def test_plain_tcp_has_no_tls_facts(targets: Targets) -> None:
    r = await probe(TcpConfig, type="tcp", host="127.0.0.1", port=targets.http)
    assert r.status is Status.OK
    assert "tls_not_after" not in r.facts


def test_tls_key_forms() -> None:
    base = {"name": "x", "type": "tcp", "host": "h", "port": 1}
    assert TcpConfig.model_validate({**base, "tls": True}).tls == TlsOptions()
    assert TcpConfig.model_validate({**base, "tls": False}).tls is None
    assert TcpConfig.model_validate({**base, "tls": {"warn_days": 30}}).tls == TlsOptions(
        warn_days=30
    )
    with pytest.raises(ValidationError, match="verfy"):
        TcpConfig.model_validate({**base, "tls": {"verfy": False}})
