"""cert_file: certificates on disk (PEM with any number of certificates, or DER), by glob.

The soonest notAfter of every certificate found decides against warn_days and
critical_days; the message names its file and subject. A file that cannot be
read or holds no certificate is critical with its reason: a certificate a
service cannot load fails that service just as an expired one does.
"""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical
from core.errors import os_error_text
from core.humanize import rfc3339
from core.status import Status

if TYPE_CHECKING:
    from cryptography import x509

DAY = 86400.0
MAX_FILE = 1024 * 1024  # a certificate bundle is kilobytes; beyond this it is something else
MAX_FILES = 1000
MAX_PROBLEMS_SHOWN = 3
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


class CertFileConfig(CheckConfig):
    type: Literal["cert_file"]
    path: Annotated[str, Field(min_length=1)]  # a file or a glob
    warn_days: Annotated[float, Field(ge=0)] = 30
    critical_days: Annotated[float, Field(ge=0)] = 7

    metric_facts: ClassVar[Mapping[str, str]] = {
        "tls_not_after": "tls_cert_not_after_timestamp_seconds",
    }

    @model_validator(mode="after")
    def _order(self) -> CertFileConfig:
        if self.critical_days > self.warn_days:
            raise ValueError(
                f"critical_days ({self.critical_days:g}) must not exceed "
                f"warn_days ({self.warn_days:g})"
            )
        return self


@dataclass(frozen=True)
class Cert:
    path: str
    subject: str
    not_after: float


@dataclass
class Found:
    certs: list[Cert]
    problems: list[str]  # "FILE: reason", one per file that gave no certificate
    files: int


def subject_of(cert: x509.Certificate) -> str:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        return f"CN={names[0].value!s}"
    return cert.subject.rfc4514_string() or "(no subject)"


def parse_file(path: str) -> list[Cert]:
    """Every certificate in one file; ValueError with the reason when there is none."""
    from cryptography import x509

    with open(path, "rb") as f:
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ValueError(f"over {MAX_FILE // 1024} KiB: not a certificate file")
    try:
        if _PEM_BEGIN in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        kind = "PEM" if _PEM_BEGIN in data else "DER"
        raise ValueError(f"not a valid {kind} certificate") from None
    return [Cert(path, subject_of(c), c.not_valid_after_utc.timestamp()) for c in certs]


def find(pattern: str) -> Found:
    """Runs in a thread: glob, read and parse; every failure becomes a problem line."""
    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    found = Found([], [], 0)
    for path in paths[:MAX_FILES]:
        if os.path.isdir(path):
            continue
        found.files += 1
        try:
            found.certs += parse_file(path)
        except OSError as exc:
            found.problems.append(f"{path}: cannot read: {os_error_text(exc)}")
        except ValueError as exc:
            found.problems.append(f"{path}: {exc}")
    return found


def judge(config: CertFileConfig, found: Found, now: float) -> CheckResult:
    if found.files == 0:
        return critical(f"no certificate file matches {config.path}")
    facts: dict[str, float] = {"certificates": float(len(found.certs))}
    problems = found.problems
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown += f"; +{len(problems) - MAX_PROBLEMS_SHOWN} more"
    if not found.certs:
        return CheckResult(Status.CRITICAL, shown, facts)
    soonest = min(found.certs, key=lambda c: c.not_after)
    facts["tls_not_after"] = soonest.not_after
    left = (soonest.not_after - now) / DAY
    facts["days_left"] = round(left, 3)
    named = f"{soonest.subject} in {soonest.path}"
    date = rfc3339(soonest.not_after)
    if left < 0:
        status, text = Status.CRITICAL, f"{named} expired {-left:.0f} days ago ({date})"
    else:
        status = (
            Status.CRITICAL
            if left < config.critical_days
            else Status.WARNING
            if left < config.warn_days
            else Status.OK
        )
        text = f"{named} expires in {left:.0f} days ({date})"
        if status is Status.OK and len(found.certs) > 1:
            text = f"{len(found.certs)} certificates; soonest: {text}"
    if problems:
        status, text = Status.CRITICAL, f"{shown}; {text}"
    return CheckResult(status, text, facts)


class CertFileCheck:
    def __init__(self, config: CertFileConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    async def run(self) -> CheckResult:
        found = await asyncio.to_thread(find, self.config.path)
        return judge(self.config, found, self.ctx.clock())


TYPE = CheckType(CertFileConfig, CertFileCheck)
