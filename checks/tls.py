"""TLS for the http and tcp checks: options, contexts, the peer chain and its verdict.

Python 3.11 has no public way to read the certificate chain a server presented
(`SSLSocket.get_unverified_chain()` is public only from 3.13). The private
`_ssl._SSLSocket.get_unverified_chain()` has existed since 3.10 and is what the
3.13 public method wraps; we read it from inside the handshake, through an
`ssl.SSLObject` subclass installed with the documented `SSLContext.sslobject_class`
hook. That hook also times the handshake (the `tls` phase) and sees the chain
even when verification fails, so an expired certificate still reports its dates
without a second connection.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from checks.base import CheckResult, critical, ok, warning

DAY = 86400.0


class TlsOptions(BaseModel):
    """`tls:` of the http check, and of the tcp check when it is a mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verify: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    warn_days: Annotated[float, Field(ge=0)] = 21
    critical_days: Annotated[float, Field(ge=0)] = 7

    @model_validator(mode="after")
    def _consistent(self) -> TlsOptions:
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file (the client certificate)")
        if self.critical_days > self.warn_days:
            raise ValueError(
                f"critical_days ({self.critical_days:g}) must not exceed "
                f"warn_days ({self.warn_days:g})"
            )
        return self


def _bool_or_options(value: object) -> object:
    """`tls: true` means default options, `tls: false` no TLS (tcp check)."""
    if value is True:
        return TlsOptions()
    if value is False:
        return None
    return value


# For the tcp check: `tls: true | false | {verify: ..., warn_days: ...}`.
OptionalTls = Annotated[TlsOptions | None, BeforeValidator(_bool_or_options)]


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: float
    not_after: float
    names: tuple[str, ...]


def _cn(name: Any) -> str:
    for rdn in name or ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


def cert_info(info: dict[str, Any]) -> CertInfo:
    return CertInfo(
        subject=_cn(info.get("subject")),
        issuer=_cn(info.get("issuer")),
        not_before=ssl.cert_time_to_seconds(info["notBefore"]),
        not_after=ssl.cert_time_to_seconds(info["notAfter"]),
        names=tuple(str(v) for _k, v in info.get("subjectAltName", ())),
    )


def _peer_chain(sslobj: ssl.SSLObject) -> tuple[CertInfo, ...]:
    inner = getattr(sslobj, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)
    if getter is None:  # not CPython >= 3.10: no chain to read
        return ()
    try:
        return tuple(cert_info(c.get_info()) for c in getter() or ())
    except (ValueError, KeyError):  # a certificate without parsable dates
        return ()


@dataclass(slots=True)
class Handshake:
    """What one TLS handshake showed: its duration and the presented chain."""

    started: float
    seconds: float | None = None
    chain: tuple[CertInfo, ...] = ()
    error: ssl.SSLError | None = None


@dataclass(slots=True)
class HandshakeLog:
    """Handshakes of the probe in progress (one check never probes twice at once)."""

    entries: list[Handshake] = field(default_factory=list)

    def clear(self) -> None:
        self.entries.clear()

    @property
    def last(self) -> Handshake | None:
        return self.entries[-1] if self.entries else None

    def tls_seconds(self) -> float:
        return sum(h.seconds or 0.0 for h in self.entries)


def _recording_class(log: HandshakeLog) -> type[ssl.SSLObject]:
    class RecordingSSLObject(ssl.SSLObject):
        _vp_handshake: Handshake | None = None

        def do_handshake(self) -> None:
            record = self._vp_handshake
            if record is None:  # first call: the TCP connection is up, TLS starts now
                record = self._vp_handshake = Handshake(time.perf_counter())
                log.entries.append(record)
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError as exc:
                record.error = exc
                record.seconds = time.perf_counter() - record.started
                record.chain = _peer_chain(self)
                raise
            record.seconds = time.perf_counter() - record.started
            record.chain = _peer_chain(self)

    return RecordingSSLObject


class TlsSetupError(Exception):
    """ca_file / client certificate could not be loaded: vaktpost cannot tell."""


def build_context(opts: TlsOptions, log: HandshakeLog) -> ssl.SSLContext:
    try:
        if opts.verify:
            ctx = ssl.create_default_context(cafile=str(opts.ca_file) if opts.ca_file else None)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if opts.cert_file:
            key = str(opts.key_file) if opts.key_file else None
            ctx.load_cert_chain(str(opts.cert_file), key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load TLS files: {exc}") from None
    ctx.sslobject_class = _recording_class(log)
    return ctx


def chain_facts(chain: tuple[CertInfo, ...]) -> dict[str, float]:
    if not chain:
        return {}
    return {
        "tls_not_after": chain[0].not_after,
        "tls_earliest_not_after": min(c.not_after for c in chain),
    }


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def span(seconds: float) -> str:
    """A human duration: `3 days`, `1 day`, `5 hours`, `12 minutes`."""
    seconds = abs(seconds)
    for unit, size in (("day", DAY), ("hour", 3600.0), ("minute", 60.0)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def _which(chain: tuple[CertInfo, ...], cert: CertInfo) -> str:
    return "certificate" if cert is chain[0] else f"chain certificate {cert.subject!r}"


def _explain_dates(chain: tuple[CertInfo, ...], code: int, now: float) -> str | None:
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        expired = [c for c in chain if c.not_after < now]
        if expired:
            c = min(expired, key=lambda c: c.not_after)
            ago = span(now - c.not_after)
            return f"{_which(chain, c)} expired {ago} ago (not after {_date(c.not_after)})"
    if code == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
        early = [c for c in chain if c.not_before > now]
        if early:
            c = max(early, key=lambda c: c.not_before)
            return (
                f"{_which(chain, c)} not valid yet: valid from {_date(c.not_before)} "
                f"(in {span(c.not_before - now)})"
            )
    return None


def explain_failure(error: ssl.SSLError, chain: tuple[CertInfo, ...], host: str, now: float) -> str:
    """One plain sentence for a failed handshake."""
    if not isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS handshake with {host} failed: {error.reason or error}"
    code = error.verify_code
    dated = _explain_dates(chain, code, now)
    if dated:
        return dated
    if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        names = ", ".join(chain[0].names) if chain else "?"
        return f"certificate is not valid for {host} (it is for: {names})"
    if code == 18:  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        return "self-signed certificate, not trusted"
    if code == 19:  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        return "self-signed certificate in the chain, not trusted"
    if code in (2, 20, 21):  # issuer not found / not trusted
        issuer = chain[0].issuer if chain else "?"
        return f"certificate issuer {issuer!r} is not trusted"
    return f"certificate verification failed: {error.verify_message}"


def expiry_verdict(
    chain: tuple[CertInfo, ...], opts: TlsOptions, now: float, message: str
) -> CheckResult:
    """`message` passes unless the earliest expiry in the chain is within the thresholds."""
    if not chain:
        return ok(message)
    soonest = min(chain, key=lambda c: c.not_after)
    left = soonest.not_after - now
    what = _which(chain, soonest)
    if left < 0:
        return critical(f"{what} expired {span(left)} ago (not after {_date(soonest.not_after)})")
    text = f"{what} expires in {span(left)} (not after {_date(soonest.not_after)})"
    if left < opts.critical_days * DAY:
        return critical(text)
    if left < opts.warn_days * DAY:
        return warning(text)
    return ok(message)
