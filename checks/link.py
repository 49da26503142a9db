"""link: the internet uplink, as a quorum over several upstream targets.

Targets are URLs: `tcp://host:port` today; more kinds plug in through `_PROBES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from checks.base import (
    CheckConfig,
    CheckContext,
    CheckResult,
    CheckType,
    critical,
    ok,
    os_error_text,
)


async def _probe_tcp(target: str) -> str | None:
    """None when up, else the reason it is down."""
    parts = urlsplit(target)
    try:
        _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except OSError as exc:
        return os_error_text(exc)
    writer.close()
    return None


_PROBES: dict[str, Callable[[str], Awaitable[str | None]]] = {"tcp": _probe_tcp}


class LinkConfig(CheckConfig):
    type: Literal["link"]
    targets: Annotated[tuple[str, ...], Field(min_length=1)]
    quorum: Annotated[int, Field(ge=1)] = 1

    metric_facts: ClassVar[Mapping[str, str]] = {"targets_up": "link_targets_up"}

    @field_validator("targets")
    @classmethod
    def _known_kinds(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        for target in targets:
            parts = urlsplit(target)
            if parts.scheme not in _PROBES:
                kinds = ", ".join(f"{k}://" for k in sorted(_PROBES))
                raise ValueError(f"target {target!r}: unsupported kind, use one of {kinds}")
            if not parts.hostname:
                raise ValueError(f"target {target!r}: no host")
            if parts.scheme == "tcp" and parts.port is None:
                raise ValueError(f"target {target!r}: tcp targets need a port")
        return targets

    @model_validator(mode="after")
    def _quorum_reachable(self) -> LinkConfig:
        if self.quorum > len(self.targets):
            raise ValueError(f"quorum {self.quorum} exceeds the {len(self.targets)} targets")
        return self


class LinkCheck:
    def __init__(self, config: LinkConfig, ctx: CheckContext) -> None:
        self.config = config

    async def run(self) -> CheckResult:
        targets = self.config.targets
        reasons = await asyncio.gather(*(self._probe(t) for t in targets))
        failed = [f"{t} ({r})" for t, r in zip(targets, reasons, strict=True) if r]
        up = len(targets) - len(failed)
        facts = {"targets_up": float(up), "targets_total": float(len(targets))}
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

    async def _probe(self, target: str) -> str | None:
        # Leave a margin inside the check's own timeout so a silent target is
        # reported as such instead of timing out the whole verdict.
        limit = self.config.timeout * 0.8
        try:
            async with asyncio.timeout(limit):
                return await _PROBES[urlsplit(target).scheme](target)
        except TimeoutError:
            return f"no answer within {limit:.1f}s"
        except Exception as exc:  # a failing target is a fact, never a crash
            return f"{type(exc).__name__}: {exc}"


TYPE = CheckType(LinkConfig, LinkCheck)
