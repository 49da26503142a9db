"""Certificates with chosen dates for TLS tests: roots, intermediates, leaves, self-signed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def not_after(self) -> float:
        return self.cert.not_valid_after_utc.timestamp()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sans(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def issue(
    cn: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    names: tuple[str, ...] = LOCAL_NAMES,
    not_before: dt.datetime = NOW - DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
) -> Issued:
    """A certificate signed by `issuer`, or self-signed when there is none."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(_sans(names), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass
class ServerCert:
    """A leaf with the chain the server presents, written to files."""

    name: str
    leaf: Issued
    chain: tuple[Issued, ...]  # intermediates presented after the leaf
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    @property
    def earliest_not_after(self) -> float:
        return min(c.not_after for c in (self.leaf, *self.chain))


def write(directory: Path, name: str, leaf: Issued, chain: tuple[Issued, ...] = ()) -> ServerCert:
    cert_file = directory / f"{name}.crt"
    key_file = directory / f"{name}.key"
    cert_file.write_bytes(b"".join(c.pem for c in (leaf, *chain)))
    key_file.write_bytes(
        leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ServerCert(name, leaf, chain, cert_file, key_file)


@dataclass
class Pki:
    """A private root, an intermediate, and one server certificate per TLS scenario."""

    root: Issued
    ca_file: Path
    certs: dict[str, ServerCert]


def make_pki(directory: Path) -> Pki:
    root = issue("vaktpost test root", ca=True, not_after=NOW + 3650 * DAY)
    inter = issue("vaktpost test intermediate", root, ca=True, not_after=NOW + 1000 * DAY)
    short_inter = issue("short-lived intermediate", root, ca=True, not_after=NOW + 5 * DAY)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(root.pem)
    leaves = {
        "valid": (issue("localhost", inter), (inter,)),
        "expired": (
            issue("localhost", inter, not_before=NOW - 100 * DAY, not_after=NOW - 3 * DAY),
            (inter,),
        ),
        "notyet": (
            issue("localhost", inter, not_before=NOW + 5 * DAY, not_after=NOW + 100 * DAY),
            (inter,),
        ),
        "wronghost": (issue("other.example", inter, names=("other.example",)), (inter,)),
        "selfsigned": (issue("localhost"), ()),
        "expiring": (issue("localhost", inter, not_after=NOW + 10 * DAY), (inter,)),
        "short_chain": (issue("localhost", short_inter), (short_inter,)),
        "client": (issue("vaktpost client", inter, names=("client.test",)), (inter,)),
    }
    certs = {name: write(directory, name, leaf, chain) for name, (leaf, chain) in leaves.items()}
    return Pki(root, ca_file, certs)
