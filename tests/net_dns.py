"""A small authoritative DNS server built on dnspython, on loopback UDP and TCP."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.net_servers import LoopThread, has_ipv6_loopback

ZONE: dict[tuple[str, str], list[str]] = {
    ("agent.test.", "A"): ["127.0.0.1"],
    ("multi.test.", "A"): ["127.0.0.2", "127.0.0.3"],
    ("agent.test.", "AAAA"): ["::1"],
    ("agent.test.", "MX"): ["10 mail.agent.test."],
    ("agent.test.", "TXT"): ['"v=spf1 -all"'],
    ("agent.test.", "NS"): ["ns1.agent.test."],
    ("agent.test.", "SOA"): ["ns1.agent.test. hostmaster.agent.test. 1 3600 600 86400 60"],
    ("www.agent.test.", "CNAME"): ["agent.test."],
    ("1.0.0.127.in-addr.arpa.", "PTR"): ["agent.test."],
    ("empty.test.", "TXT"): ['"only txt here"'],
}
SERVFAIL = "servfail.test."
SILENT = "silent.test."


def answer(wire: bytes) -> bytes | None:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    question = query.question[0]
    name, rdtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
    if name == SILENT:
        return None
    if name == SERVFAIL:
        response.set_rcode(dns.rcode.SERVFAIL)
    elif (name, rdtype) in ZONE:
        response.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, *ZONE[(name, rdtype)]))
    elif not any(n == name for n, _t in ZONE):
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


async def _tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = answer(await reader.readexactly(length))
        if reply is not None:
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    writer.close()


@dataclass
class DnsServer:
    port: int
    port6: int  # 0 without IPv6 loopback


async def _start(closers: list[object]) -> DnsServer:
    loop = asyncio.get_running_loop()
    ports = []
    for host in ("127.0.0.1", "::1") if has_ipv6_loopback() else ("127.0.0.1",):
        tcp = await asyncio.start_server(_tcp, host, 0)
        port = tcp.sockets[0].getsockname()[1]
        udp, _ = await loop.create_datagram_endpoint(_Udp, local_addr=(host, port))
        closers += [tcp, udp]
        ports.append(port)
    return DnsServer(ports[0], ports[1] if len(ports) > 1 else 0)


async def _stop(closers: list[object]) -> None:
    for c in closers:
        c.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def running_dns() -> Iterator[DnsServer]:
    """Same port for UDP and TCP; retries if the UDP port happens to be taken."""
    thread = LoopThread()
    closers: list[object] = []
    try:
        server = None
        for _attempt in range(5):
            try:
                server = thread.call(_start(closers))
                break
            except OSError:
                thread.call(_stop(closers))
                closers.clear()
        assert server is not None, "no free port for the DNS server"
        yield server
    finally:
        thread.call(_stop(closers))
        thread.stop()
