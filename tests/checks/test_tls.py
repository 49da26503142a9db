"""TLS verdicts of the http check against servers with generated certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.base import CheckResult, Status
from checks.http import HttpConfig
from tests.net_certs import Pki
from tests.net_fixtures import probe
from tests.net_servers import Targets


async def https(targets: Targets, pki: Pki, name: str, **tls: object) -> CheckResult:
    tls.setdefault("ca_file", str(pki.ca_file))
    return await probe(HttpConfig, type="http", url=targets.tls_url(name), tls=tls)


async def test_valid_chain_with_ca_file(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "valid")
    cert = pki.certs["valid"]
    assert r.status is Status.OK, r.message
    assert r.facts["tls_not_after"] == cert.leaf.not_after
    assert r.facts["tls_earliest_not_after"] == cert.earliest_not_after
    assert r.facts["tls_seconds"] > 0
    assert r.facts["status_code"] == 200


async def test_system_cas_do_not_trust_a_private_root(targets: Targets, pki: Pki) -> None:
    r = await probe(HttpConfig, type="http", url=targets.tls_url("valid"))
    assert r.status is Status.CRITICAL
    assert "issuer 'vaktpost test intermediate' is not trusted" in r.message
    assert r.facts["tls_not_after"] == pki.certs["valid"].leaf.not_after


async def test_expired_is_critical_with_days_and_date(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "expired")
    leaf = pki.certs["expired"].leaf
    assert r.status is Status.CRITICAL
    date = leaf.cert.not_valid_after_utc.strftime("%Y-%m-%d")
    assert r.message == f"certificate expired 3 days ago (not after {date})"
    assert r.facts["tls_not_after"] == leaf.not_after  # facts even though it failed


async def test_not_yet_valid(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "notyet")
    assert r.status is Status.CRITICAL
    assert r.message.startswith("certificate not valid yet: valid from ")
    assert "(in 4 days)" in r.message or "(in 5 days)" in r.message


async def test_wrong_host(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "wronghost")
    assert r.status is Status.CRITICAL
    assert r.message == "certificate is not valid for localhost (it is for: other.example)"


async def test_self_signed(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "selfsigned")
    assert r.status is Status.CRITICAL
    assert r.message == "self-signed certificate, not trusted"
    assert r.facts["tls_not_after"] == pki.certs["selfsigned"].leaf.not_after


async def test_verify_false_accepts_self_signed_but_keeps_facts(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "selfsigned", verify=False)
    assert r.status is Status.OK, r.message
    assert r.facts["tls_not_after"] == pki.certs["selfsigned"].leaf.not_after


async def test_verify_false_still_flags_expiry(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "expired", verify=False)
    assert r.status is Status.CRITICAL
    assert "certificate expired 3 days ago" in r.message


async def test_expiring_within_warn_days_is_warning(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "expiring")
    assert r.status is Status.WARNING
    assert r.message.startswith("certificate expires in 9 days") or r.message.startswith(
        "certificate expires in 10 days"
    )
    critical = await https(targets, pki, "expiring", critical_days=14, warn_days=30)
    assert critical.status is Status.CRITICAL
    quiet = await https(targets, pki, "expiring", critical_days=1, warn_days=5)
    assert quiet.status is Status.OK


async def test_intermediate_expiring_first_is_named(targets: Targets, pki: Pki) -> None:
    r = await https(targets, pki, "short_chain")
    cert = pki.certs["short_chain"]
    assert r.status is Status.CRITICAL  # 5 days < critical_days 7
    assert "chain certificate 'short-lived intermediate' expires in 4 days" in r.message
    assert r.facts["tls_earliest_not_after"] == cert.chain[0].not_after
    assert r.facts["tls_earliest_not_after"] < r.facts["tls_not_after"]


async def test_sni_server_name_for_an_ip_url(targets: Targets, pki: Pki) -> None:
    url = targets.tls_url("valid", host="127.0.0.1")
    wrong = await probe(
        HttpConfig, type="http", url=url, tls={"ca_file": str(pki.ca_file), "server_name": "x.y"}
    )
    right = await probe(
        HttpConfig,
        type="http",
        url=url,
        tls={"ca_file": str(pki.ca_file), "server_name": "localhost"},
    )
    assert wrong.status is Status.CRITICAL and "not valid for x.y" in wrong.message
    assert right.status is Status.OK, right.message


async def test_client_certificate(targets: Targets, pki: Pki) -> None:
    url = f"https://localhost:{targets.mtls}/ok"
    client = pki.certs["client"]
    without = await probe(HttpConfig, type="http", url=url, tls={"ca_file": str(pki.ca_file)})
    with_cert = await probe(
        HttpConfig,
        type="http",
        url=url,
        tls={
            "ca_file": str(pki.ca_file),
            "cert_file": str(client.cert_file),
            "key_file": str(client.key_file),
        },
    )
    assert without.status is Status.CRITICAL
    assert with_cert.status is Status.OK, with_cert.message


async def test_missing_ca_file_is_unknown(targets: Targets, tmp_path: Path) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.tls_url("valid"),
        tls={"ca_file": str(tmp_path / "nope.pem")},
    )
    assert r.status is Status.UNKNOWN
    assert "cannot load TLS files" in r.message


@pytest.mark.parametrize("name", ["valid", "expired"])
async def test_phase_facts_add_up(targets: Targets, pki: Pki, name: str) -> None:
    r = await https(targets, pki, name)
    assert r.facts["tls_seconds"] > 0
    assert r.facts["connect_seconds"] >= 0
