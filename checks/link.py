"""link: the internet uplink, as a quorum over several upstream targets.

Targets are URLs of the other probe kinds, and each is probed by that kind's
own check (no second implementation of any probe):

- `tcp://host:port`            tcp check (connect)
- `http://...`, `https://...`  http check (2xx, TLS verified against system CAs)
- `dns://server[:port]/name`   dns check (A record; `?type=AAAA` for another type)
- `icmp://host`                icmp check (one echo request)

A target is up when its probe is ok or warning: an expiring certificate says
nothing about the uplink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from checks.base import Check, CheckConfig, CheckContext, CheckResult, CheckType, critical, ok
from checks.dns import DnsCheck, DnsConfig
from checks.http import HttpCheck
from checks.http_config import HttpConfig
from checks.icmp import IcmpCheck, IcmpConfig
from checks.tcp import TcpCheck, TcpConfig
from core.redact import redact_text, redact_url
from core.status import Status

KINDS = ("tcp", "http", "https", "dns", "icmp")
# Each target gets this share of the link's timeout, so a silent target is
# reported by name instead of the whole verdict timing out.
TARGET_TIMEOUT_SHARE = 0.8


def target_keys(target: str, timeout: float) -> dict[str, Any]:
    """The config keys of the check that probes `target`; ValueError when malformed."""
    parts = urlsplit(target)
    base: dict[str, Any] = {"name": "target", "timeout": timeout}
    if parts.scheme not in KINDS:
        kinds = ", ".join(f"{k}://" for k in KINDS)
        raise ValueError(f"unsupported kind, use one of {kinds}")
    if not parts.hostname:
        raise ValueError("no host")
    if parts.scheme == "tcp":
        if parts.port is None:
            raise ValueError("tcp targets need a port")
        return base | {"type": "tcp", "host": parts.hostname, "port": parts.port}
    if parts.scheme in ("http", "https"):
        return base | {"type": "http", "url": target}
    if parts.scheme == "dns":
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ValueError("dns targets name what to ask: dns://server/name")
        rtype = parse_qs(parts.query).get("type", ["A"])[0].upper()
        return base | {"type": "dns", "server": parts.netloc, "query": name, "record_type": rtype}
    return base | {"type": "icmp", "host": parts.hostname, "count": 1}


_MODELS: dict[str, tuple[type[CheckConfig], Any]] = {
    "tcp": (TcpConfig, TcpCheck),
    "http": (HttpConfig, HttpCheck),
    "dns": (DnsConfig, DnsCheck),
    "icmp": (IcmpConfig, IcmpCheck),
}


def target_check(target: str, timeout: float, ctx: CheckContext) -> Check:
    keys = target_keys(target, timeout)
    model, factory = _MODELS[keys["type"]]
    check: Check = factory(model.model_validate(keys), ctx)
    return check


class LinkConfig(CheckConfig):
    type: Literal["link"]
    is_uplink: ClassVar[bool] = True
    targets: Annotated[tuple[str, ...], Field(min_length=1)]
    quorum: Annotated[int, Field(ge=1)] = 1

    metric_facts: ClassVar[Mapping[str, str]] = {"targets_up": "link_targets_up"}

    @field_validator("targets")
    @classmethod
    def _known_kinds(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        # Targets are named by position: a target URL may hold a password.
        for index, target in enumerate(targets):
            try:
                keys = target_keys(target, 1.0)
            except ValueError as exc:
                raise ValueError(f"target {index + 1}: {exc}") from None
            model = _MODELS[keys["type"]][0]
            try:
                model.model_validate(keys)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                why = redact_text(str(first["msg"]).removeprefix("Value error, "))
                raise ValueError(f"target {index + 1}: {where}: {why}") from None
        if len(set(targets)) != len(targets):
            raise ValueError("a target is listed twice")
        return targets

    @model_validator(mode="after")
    def _quorum_reachable(self) -> LinkConfig:
        if self.quorum > len(self.targets):
            raise ValueError(f"quorum {self.quorum} exceeds the {len(self.targets)} targets")
        return self


class LinkCheck:
    def __init__(self, config: LinkConfig, ctx: CheckContext) -> None:
        self.config = config
        limit = config.timeout * TARGET_TIMEOUT_SHARE
        self._probes = [target_check(t, limit, ctx) for t in config.targets]

    async def aclose(self) -> None:
        """Closes what the target probes hold (an http target keeps a session)."""
        for probe in self._probes:
            close = getattr(probe, "aclose", None)
            if close is not None:
                await close()

    async def run(self) -> CheckResult:
        targets = self.config.targets
        results = await asyncio.gather(*(self._probe(p) for p in self._probes))
        up_flags = [r.status in (Status.OK, Status.WARNING) for r in results]
        failed = [
            f"{redact_url(t)} ({r.message})"
            for t, r, up in zip(targets, results, up_flags, strict=True)
            if not up
        ]
        up = sum(up_flags)
        facts = {"targets_up": float(up), "targets_total": float(len(targets))}
        facts |= {f"target_{i}_up": float(flag) for i, flag in enumerate(up_flags)}
        if up >= self.config.quorum:
            msg = f"{up}/{len(targets)} upstream targets reachable"
            if failed:
                msg += "; down: " + ", ".join(failed)
            return ok(msg, **facts)
        return critical(
            f"uplink down: {up}/{len(targets)} reachable, quorum {self.config.quorum}; "
            "down: " + ", ".join(failed),
            **facts,
        )

    async def _probe(self, probe: Check) -> CheckResult:
        limit = probe.config.timeout
        try:
            async with asyncio.timeout(limit):
                return await probe.run()
        except TimeoutError:
            return critical(f"no answer within {limit:.1f}s")
        except Exception as exc:  # a failing target is a fact, never a crash
            return critical(f"{type(exc).__name__}: {exc}")


TYPE = CheckType(LinkConfig, LinkCheck)
