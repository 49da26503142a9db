"""icmp: echo requests with icmplib; loss and round-trip time.

Root gets a raw (privileged) socket. Otherwise the unprivileged datagram
socket, which Linux allows only to groups in net.ipv4.ping_group_range; when
neither is allowed the result is `unknown` (vaktpost cannot tell), not critical.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

if TYPE_CHECKING:
    import icmplib

from checks.base import (
    CheckConfig,
    CheckContext,
    CheckResult,
    CheckType,
    critical,
    ok,
    unknown,
    warning,
)
from core.durations import Duration, format_duration


def _percent(value: object) -> object:
    if isinstance(value, str) and value.strip().endswith("%"):
        return value.strip()[:-1]
    return value


class IcmpConfig(CheckConfig):
    type: Literal["icmp"]
    host: str
    count: Annotated[int, Field(ge=1, le=100)] = 3
    packet_interval: Annotated[Duration, Field(ge=0.01)] = 0.2  # between echo requests
    # Percent of lost replies tolerated (`20` or `"20%"`); above it the check fails.
    max_loss: Annotated[float, BeforeValidator(_percent), Field(ge=0, le=100)] = 0
    # Average RTT above this is a warning (the host answers, slowly).
    max_rtt: Annotated[Duration, Field(gt=0)] | None = None
    ip_version: Literal[4, 6] | None = None

    metric_facts: ClassVar[Mapping[str, str]] = {
        "rtt_avg_seconds": "icmp_rtt_seconds",
        "loss_ratio": "icmp_loss_ratio",
    }

    @model_validator(mode="after")
    def _fits_in_timeout(self) -> IcmpConfig:
        spread = (self.count - 1) * self.packet_interval
        if spread >= self.timeout * 0.9:
            raise ValueError(
                f"count {self.count} x packet_interval {format_duration(self.packet_interval)} "
                "does not fit "
                f"in timeout {format_duration(self.timeout)}"
            )
        return self


class IcmpCheck:
    def __init__(self, config: IcmpConfig, ctx: CheckContext) -> None:
        self.config = config
        self._privileged = os.geteuid() == 0
        # Wait for the last reply until just before the runner's deadline.
        spread = (config.count - 1) * config.packet_interval
        self._reply_timeout = max(config.timeout * 0.9 - spread, 0.05)

    async def run(self) -> CheckResult:
        # Imported on first use: ~8 MB of RSS that agents without icmp checks skip.
        import icmplib

        cfg = self.config
        try:
            host = await icmplib.async_ping(
                cfg.host,
                count=cfg.count,
                interval=cfg.packet_interval,
                timeout=self._reply_timeout,
                privileged=self._privileged,
                family=cfg.ip_version,
            )
        except icmplib.SocketPermissionError:
            return unknown(
                "no permission for ICMP sockets: run as root, or allow this group in "
                "net.ipv4.ping_group_range"
            )
        except icmplib.NameLookupError:
            return critical(f"cannot resolve {cfg.host}")
        except (icmplib.ICMPLibError, OSError) as exc:
            return critical(f"ping {cfg.host} failed: {exc}")
        return self._judge(host)

    def _judge(self, host: icmplib.Host) -> CheckResult:
        cfg = self.config
        facts = {
            "packets_sent": float(host.packets_sent),
            "packets_received": float(host.packets_received),
            "loss_ratio": float(host.packet_loss),
        }
        if host.packets_received == 0:
            return critical(f"{cfg.host}: no reply to {host.packets_sent} echo requests", **facts)
        facts |= {
            "rtt_avg_seconds": host.avg_rtt / 1000,
            "rtt_min_seconds": host.min_rtt / 1000,
            "rtt_max_seconds": host.max_rtt / 1000,
        }
        summary = (
            f"{cfg.host}: {host.packets_received}/{host.packets_sent} replies, "
            f"rtt avg {host.avg_rtt:.2f} ms"
        )
        if host.packet_loss * 100 > cfg.max_loss:
            return critical(f"{summary}; loss {host.packet_loss:.0%} > {cfg.max_loss:g}%", **facts)
        if cfg.max_rtt is not None and host.avg_rtt / 1000 > cfg.max_rtt:
            limit = format_duration(cfg.max_rtt)
            return warning(f"{summary}; above max_rtt {limit}", **facts)
        return ok(summary, **facts)


TYPE = CheckType(IcmpConfig, IcmpCheck)
