"""ntp: the clock offset against an NTP server, by one SNTP (RFC 4330) exchange over UDP.

Certificates, Kerberos (5 minutes of tolerance) and log correlation all break
when clocks drift, long before anything else notices.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical, ok, warning
from checks.dns import parse_server
from core.durations import Duration, format_duration
from core.errors import os_error_text

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_PACKET = struct.Struct("!BBbb11I")  # 48 bytes: flags, stratum, poll, precision, 11 words
_DEADLINE_SHARE = 0.9


def to_ntp(unix: float) -> tuple[int, int]:
    seconds = unix + NTP_EPOCH_OFFSET
    whole = int(seconds)
    return whole, int((seconds - whole) * 2**32) & 0xFFFFFFFF


def from_ntp(whole: int, fraction: int) -> float:
    return whole - NTP_EPOCH_OFFSET + fraction / 2**32


class NtpConfig(CheckConfig):
    type: Literal["ntp"]
    server: str  # host[:port], IPv6 as [::1]:123; port 123 by default
    warn_offset: Annotated[Duration, Field(gt=0)] = 1.0
    critical_offset: Annotated[Duration, Field(gt=0)] = 10.0

    metric_facts: ClassVar[Mapping[str, str]] = {"offset_seconds": "ntp_offset_seconds"}

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        parse_server(value, default_port=123)
        return value

    @model_validator(mode="after")
    def _order(self) -> NtpConfig:
        if self.warn_offset > self.critical_offset:
            raise ValueError("warn_offset must not exceed critical_offset")
        return self


class _Exchange(asyncio.DatagramProtocol):
    def __init__(
        self,
        request: bytes,
        reply: asyncio.Future[tuple[bytes, float]],
        clock: Callable[[], float],
    ) -> None:
        self.request, self.reply, self.clock = request, reply, clock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.sendto(self.request)  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result((data, self.clock()))

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        if not self.reply.done():
            self.reply.set_exception(exc)


class NtpCheck:
    def __init__(self, config: NtpConfig, ctx: CheckContext) -> None:
        self.config = config
        self._host, self._port = parse_server(config.server, default_port=123)
        self._clock = ctx.clock

    async def run(self) -> CheckResult:
        where = self.config.server
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[tuple[bytes, float]] = loop.create_future()
        # A random transmit timestamp would do; ours is the send time, echoed as "originate".
        sent = self._clock()
        whole, frac = to_ntp(sent)
        frac ^= int.from_bytes(os.urandom(2), "big")  # low bits as a nonce against spoofing
        request = _PACKET.pack(0x23, 0, 0, 0, *([0] * 9), whole, frac)  # LI 0, VN 4, mode 3
        budget = self.config.timeout * _DEADLINE_SHARE
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Exchange(request, reply, self._clock),
                remote_addr=(self._host, self._port),
            )
        except OSError as exc:
            return critical(f"cannot reach NTP server {where}: {os_error_text(exc)}")
        try:
            data, received = await asyncio.wait_for(reply, budget)
        except TimeoutError:
            return critical(f"no answer from NTP server {where} within {budget:.1f}s")
        except OSError as exc:
            return critical(f"NTP server {where}: {os_error_text(exc)}")
        finally:
            transport.close()
        return self._judge(data, (whole, frac), sent, received)

    def _judge(self, data: bytes, nonce: tuple[int, int], t1: float, t4: float) -> CheckResult:
        where = self.config.server
        if len(data) < _PACKET.size:
            return critical(f"NTP server {where} sent {len(data)} bytes, not an NTP packet")
        flags, stratum, _poll, _prec, *words = _PACKET.unpack_from(data)
        if flags & 0x7 != 4 or (words[5], words[6]) != nonce:
            return critical(f"NTP server {where} sent a reply that is not an answer to ours")
        if stratum == 0:
            code = words[2].to_bytes(4, "big").decode("ascii", "replace")
            return critical(f"NTP server {where} refused: kiss-o'-death {code!r}")
        if flags >> 6 == 3:
            return critical(f"NTP server {where} is not synchronised (leap indicator alarm)")
        t2, t3 = from_ntp(words[7], words[8]), from_ntp(words[9], words[10])
        offset = ((t2 - t1) + (t3 - t4)) / 2
        delay = (t4 - t1) - (t3 - t2)
        facts = {"offset_seconds": offset, "delay_seconds": delay, "stratum": float(stratum)}
        text = f"clock offset {offset * 1000:+.1f} ms against {where} (stratum {stratum})"
        cfg = self.config
        if abs(offset) >= cfg.critical_offset:
            return critical(f"{text}, limit {format_duration(cfg.critical_offset)}", **facts)
        if abs(offset) >= cfg.warn_offset:
            return warning(f"{text}, warning at {format_duration(cfg.warn_offset)}", **facts)
        return ok(text, **facts)


TYPE = CheckType(NtpConfig, NtpCheck)
