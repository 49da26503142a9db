"""ntp check against an in-test SNTP server on loopback that answers with a chosen offset."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from checks.base import CheckResult, Status
from checks.ntp import NtpConfig, to_ntp
from tests.net_fixtures import probe
from tests.net_servers import closed_port


@dataclass
class Behaviour:
    offset: float = 0.0
    stratum: int = 2
    leap: int = 0
    silent: bool = False
    wrong_originate: bool = False


class FakeNtp(asyncio.DatagramProtocol):
    """Answers like a server whose clock is `offset` seconds ahead of ours."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.b.silent:
            return
        originate = data[40:48] if not self.b.wrong_originate else b"\x00" * 8
        now = time.time() + self.b.offset
        recv = struct.pack("!II", *to_ntp(now))
        ref_id = b"DENY" if self.b.stratum == 0 else b"\x7f\x00\x00\x01"
        head = struct.pack(
            "!BBbbII", (self.b.leap << 6) | (4 << 3) | 4, self.b.stratum, 6, -20, 0, 0
        )
        reply = head + ref_id + recv + originate + recv + recv
        self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


@pytest.fixture
async def ntp() -> AsyncIterator[tuple[int, Behaviour]]:
    behaviour = Behaviour()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: FakeNtp(behaviour), local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")[1], behaviour
    transport.close()


async def check(port: int, **keys: object) -> CheckResult:
    return await probe(NtpConfig, type="ntp", server=f"127.0.0.1:{port}", **keys)


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0.0, Status.OK), (2.5, Status.WARNING), (-2.5, Status.WARNING), (30.0, Status.CRITICAL)],
)
async def test_offset_thresholds(ntp: tuple[int, Behaviour], offset: float, status: Status) -> None:
    port, behaviour = ntp
    behaviour.offset = offset
    r = await check(port)
    assert r.status is status, r.message
    assert r.facts["offset_seconds"] == pytest.approx(offset, abs=0.05)
    assert r.facts["stratum"] == 2
    assert r.message.startswith("clock offset " + ("-" if offset < 0 else "+"))


async def test_custom_thresholds(ntp: tuple[int, Behaviour]) -> None:
    port, behaviour = ntp
    behaviour.offset = 0.3
    r = await check(port, warn_offset="100ms", critical_offset="200ms")
    assert r.status is Status.CRITICAL
    assert "limit 200ms" in r.message


async def test_no_answer_within_timeout(ntp: tuple[int, Behaviour]) -> None:
    port, behaviour = ntp
    behaviour.silent = True
    r = await check(port, timeout="300ms")
    assert r.status is Status.CRITICAL
    assert "no answer from NTP server" in r.message


async def test_kiss_of_death_and_unsynchronised(ntp: tuple[int, Behaviour]) -> None:
    port, behaviour = ntp
    behaviour.stratum = 0
    kod = await check(port)
    assert kod.status is Status.CRITICAL and "kiss-o'-death 'DENY'" in kod.message
    behaviour.stratum, behaviour.leap = 2, 3
    unsync = await check(port)
    assert unsync.status is Status.CRITICAL and "not synchronised" in unsync.message


async def test_reply_to_someone_else_is_rejected(ntp: tuple[int, Behaviour]) -> None:
    port, behaviour = ntp
    behaviour.wrong_originate = True
    r = await check(port)
    assert r.status is Status.CRITICAL
    assert "not an answer to ours" in r.message


async def test_closed_port() -> None:
    r = await check(closed_port(), timeout="1s")
    assert r.status is Status.CRITICAL
    assert "refused" in r.message or "no answer" in r.message


def test_config() -> None:
    with pytest.raises(ValidationError, match="warn_offset must not exceed"):
        NtpConfig.model_validate(
            {
                "name": "n",
                "type": "ntp",
                "server": "::1",
                "warn_offset": "5s",
                "critical_offset": "1s",
            }
        )
