"""icmp check: real echo to 127.0.0.1 (root in CI), the no-permission path, verdict rules."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import icmplib
import pytest
from pydantic import ValidationError

from checks.base import CheckContext, Status
from checks.icmp import IcmpCheck, IcmpConfig
from tests.net_fixtures import probe
from tests.net_servers import require


def cfg(**keys: object) -> IcmpConfig:
    return IcmpConfig.model_validate({"name": "p", "type": "icmp", "host": "127.0.0.1", **keys})


async def test_ping_loopback() -> None:
    require(os.geteuid() == 0, "root (privileged ICMP)")
    r = await probe(IcmpConfig, type="icmp", host="127.0.0.1", count=3, packet_interval="10ms")
    assert r.status is Status.OK, r.message
    assert r.facts["packets_received"] == 3
    assert r.facts["loss_ratio"] == 0
    assert 0 < r.facts["rtt_avg_seconds"] < 0.1


async def test_max_rtt_exceeded_is_warning() -> None:
    require(os.geteuid() == 0, "root (privileged ICMP)")
    r = await probe(IcmpConfig, type="icmp", host="127.0.0.1", count=1, max_rtt="1ms")
    # loopback answers in microseconds: 1ms is not exceeded
    assert r.status is Status.OK
    check = IcmpCheck(cfg(max_rtt="1ms"), CheckContext(Path("/"), "t"))
    slow = icmplib.Host("127.0.0.1", 3, [5.0, 6.0, 7.0])
    assert check._judge(slow).status is Status.WARNING


def test_loss_rules() -> None:
    check = IcmpCheck(cfg(count=4, max_loss=25), CheckContext(Path("/"), "t"))
    assert check._judge(icmplib.Host("h", 4, [1.0, 1.0, 1.0])).status is Status.OK
    half = check._judge(icmplib.Host("h", 4, [1.0, 1.0]))
    assert half.status is Status.CRITICAL and "loss 50% > 25%" in half.message
    none = check._judge(icmplib.Host("h", 4, []))
    assert none.status is Status.CRITICAL and "no reply to 4 echo requests" in none.message


async def test_unprivileged_socket_or_unknown() -> None:
    check = IcmpCheck(cfg(count=1), CheckContext(Path("/"), "t"))
    check._privileged = False  # the path a non-root agent takes
    r = await check.run()
    group_range = await asyncio.to_thread(Path("/proc/sys/net/ipv4/ping_group_range").read_text)
    low, high = (int(x) for x in group_range.split())
    if low <= os.getegid() <= high:
        assert r.status is Status.OK, r.message
    else:
        assert r.status is Status.UNKNOWN
        assert "ping_group_range" in r.message


async def test_unresolvable_host_is_critical() -> None:
    require(os.geteuid() == 0, "root (privileged ICMP)")
    r = await probe(IcmpConfig, type="icmp", host="no-such-host.invalid", count=1)
    assert r.status is Status.CRITICAL
    assert "cannot resolve no-such-host.invalid" in r.message


def test_count_must_fit_in_timeout() -> None:
    with pytest.raises(ValidationError, match="does not fit in timeout 1s"):
        cfg(count=10, packet_interval="200ms", timeout="1s")


def test_max_loss_as_percent_string_and_schedule_interval_kept() -> None:
    c = cfg(max_loss="34%", interval="30s", count=3)
    assert c.max_loss == 34
    assert c.interval == 30  # the common schedule key, not the echo spacing
