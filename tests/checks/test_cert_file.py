"""cert_file: certificates made in fixtures with chosen dates; chains, DER, garbage, unreadable."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from checks.base import CheckContext, CheckResult, Status
from checks.cert_file import CertFileCheck, CertFileConfig
from tests.helpers import ROOT

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def cert(cn: str, days_left: float) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=400))
        .not_valid_after(NOW + dt.timedelta(days=days_left))
        .sign(KEY, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def run(path: str, **keys: float) -> CheckResult:
    config = CertFileConfig.model_validate({"name": "c", "type": "cert_file", "path": path, **keys})
    ctx = CheckContext(Path("/nonexistent"), "t", clock=NOW.timestamp)
    return asyncio.run(CertFileCheck(config, ctx).run())


def test_fine_soon_and_expired(tmp_path: Path) -> None:
    for name, days in (("fine", 90), ("soon", 20), ("close", 3), ("gone", -2)):
        (tmp_path / f"{name}.pem").write_bytes(pem(cert(f"{name}.kommun.se", days)))
    fine = run(str(tmp_path / "fine.pem"))
    assert fine.status is Status.OK
    assert (
        fine.message
        == f"CN=fine.kommun.se in {tmp_path}/fine.pem expires in 90 days (2026-05-31T12:00:00Z)"
    )
    assert fine.facts["tls_not_after"] == (NOW + dt.timedelta(days=90)).timestamp()
    assert run(str(tmp_path / "soon.pem")).status is Status.WARNING
    assert run(str(tmp_path / "close.pem")).status is Status.CRITICAL
    gone = run(str(tmp_path / "gone.pem"))
    assert gone.status is Status.CRITICAL and "expired 2 days ago" in gone.message


def test_a_chain_in_one_file_is_judged_by_its_soonest(tmp_path: Path) -> None:
    (tmp_path / "chain.pem").write_bytes(pem(cert("leaf", 200), cert("intermediate", 10)))
    result = run(str(tmp_path / "chain.pem"))
    assert result.status is Status.WARNING
    assert result.message.startswith("CN=intermediate in ") and result.facts["certificates"] == 2


def test_der_and_a_glob_over_several_files(tmp_path: Path) -> None:
    (tmp_path / "a.der").write_bytes(cert("der-cert", 5).public_bytes(serialization.Encoding.DER))
    (tmp_path / "b.pem").write_bytes(pem(cert("pem-cert", 100)))
    result = run(str(tmp_path / "*"))
    assert result.status is Status.CRITICAL
    assert result.message.startswith(f"CN=der-cert in {tmp_path}/a.der expires in 5 days")


def test_garbage_and_unreadable_files_give_their_reason(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "random.der").write_bytes(os.urandom(300))
    result = run(str(tmp_path / "garbage.pem"))
    assert (result.status, result.message) == (
        Status.CRITICAL,
        f"{tmp_path}/garbage.pem: not a valid PEM certificate",
    )
    assert run(str(tmp_path / "random.der")).message.endswith("not a valid DER certificate")
    missing = run(str(tmp_path / "missing.pem"))
    assert missing.message == f"{tmp_path}/missing.pem: cannot read: no such file or directory"
    assert run(str(tmp_path / "none-*.pem")).message.startswith("no certificate file matches")


def test_unreadable_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.pem"
    locked.write_bytes(pem(cert("x", 90)))
    locked.chmod(0)
    if os.geteuid() != 0:
        assert run(str(locked)).message.endswith("cannot read: permission denied")
        return
    # Root reads every file: probe as nobody instead (CI runs as root), never skip.
    tmp_path.chmod(0o755)
    script = (
        "import asyncio, sys; from tests.checks.test_cert_file import run;"
        " print(run(sys.argv[1]).message)"
    )
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
            str(locked),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.stdout.strip().endswith("cannot read: permission denied"), done.stderr


def test_a_path_that_cannot_be_opened_even_by_root(tmp_path: Path) -> None:
    (tmp_path / "file.pem").write_bytes(pem(cert("x", 90)))
    result = run(str(tmp_path / "file.pem" / "inside.pem"))
    assert result.status is Status.CRITICAL
    assert result.message.endswith("inside.pem: cannot read: not a directory")


def test_one_bad_file_among_good_ones_is_critical_and_named(tmp_path: Path) -> None:
    (tmp_path / "good.pem").write_bytes(pem(cert("good", 90)))
    (tmp_path / "bad.pem").write_bytes(b"junk")
    result = run(str(tmp_path / "*.pem"))
    assert result.status is Status.CRITICAL
    assert result.message.startswith(f"{tmp_path}/bad.pem: not a valid DER certificate; CN=good")


def test_critical_days_must_not_exceed_warn_days() -> None:
    with pytest.raises(ValidationError, match="critical_days"):
        CertFileConfig.model_validate(
            {"name": "c", "type": "cert_file", "path": "/x", "warn_days": 5, "critical_days": 9}
        )


def test_an_expiring_certificate_file_drives_a_department_ladder(tmp_path: Path) -> None:
    from tests.alerting_fixtures import ThreadedReceiver, free_port, wait_for
    from tests.signals_fixtures import signal_daemon, status_of

    live = tmp_path / "ldaps.pem"
    soon = dt.datetime.now(dt.UTC) - NOW  # cert() dates count from NOW: shift to today
    live.write_bytes(pem(cert("ldap.kommun.se", 3 + soon.days)))
    port = free_port()
    with ThreadedReceiver() as rx:
        cfg = tmp_path / "vaktpost.yaml"
        cfg.write_text(
            f"""
agent: {{name: cert-e2e, listen: "127.0.0.1:{port}", state_dir: {tmp_path / "state"}}}
channels:
  hook: {{type: webhook, url: "{rx.url}", default: true}}
checks:
  - {{name: ldaps-cert, type: cert_file, path: "{tmp_path}/*.pem", interval: 0.3s,
      failures_before_alert: 1}}
departments:
  - id: it
    systems: [{{id: ldap, checks: [ldaps-cert], rto: 1h}}]
    escalation: [{{after: 0m, notify: [hook]}}]
"""
        )
        base = f"http://127.0.0.1:{port}"

        def ladder(status: str) -> list[object]:
            return [b for b in list(rx.receiver.received) if b.get("status") == status]

        with signal_daemon(cfg, tmp_path / "daemon.log", base):
            firing = wait_for(lambda: ladder("firing"), 15, "an incident for the certificate")
            assert "CN=ldap.kommun.se" in str(firing[0])
            live.write_bytes(pem(cert("ldap.kommun.se", 200 + soon.days)))
            wait_for(lambda: ladder("resolved"), 15, "resolved once renewed")
            assert status_of(base, "ldaps-cert") == "ok"
