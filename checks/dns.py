"""dns: ask one server for one record, judge rcode, answers and `expect`.

Queries go straight to the configured server with dns.asyncquery (no recursion
through the system resolver, no search domains), so the verdict is about that
server. UDP answers with the TC bit are retried over TCP, like any resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import field_validator

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical, ok, unknown

if TYPE_CHECKING:
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode
    import dns.rdatatype

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR"]
_SERVER = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")
_DEADLINE_SHARE = 0.9  # answer "no reply" ourselves before the runner's generic timeout


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address."""
    if text.count(":") > 1 and not text.startswith("["):
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(
                f"invalid server {text!r}: write IPv6 with a port as [::1]:53"
            ) from None
        return text, default_port
    match = _SERVER.match(text)
    if not match:
        raise ValueError(f"invalid server {text!r}: use host, host:port or [ipv6]:port")
    port = int(match.group("port") or default_port)
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid server {text!r}: port out of range")
    return match.group("v6") or match.group("host"), port


def _expectation(item: str) -> re.Pattern[str] | str:
    """`/regex/` is a regex; anything else a literal value (trailing dots ignored)."""
    if len(item) >= 2 and item.startswith("/") and item.endswith("/"):
        return re.compile(item[1:-1])
    return item.rstrip(".").lower()


class DnsConfig(CheckConfig):
    type: Literal["dns"]
    query: str
    record_type: RecordType = "A"
    server: str
    protocol: Literal["udp", "tcp"] = "udp"
    # Each item must match at least one answer: a value, or a regex in /slashes/.
    expect: tuple[str, ...] = ()
    # NOERROR without a record of the type is a failure unless this is true.
    allow_empty: bool = False

    metric_facts: ClassVar[Mapping[str, str]] = {
        "answers": "dns_answers",
        "query_seconds": "dns_query_seconds",
    }

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        parse_server(value)  # its ValueError names the problem
        return value

    @field_validator("expect")
    @classmethod
    def _regexes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for item in values:
            try:
                _expectation(item)
            except re.error as exc:
                raise ValueError(f"invalid regex {item!r}: {exc}") from None
        return values


def answer_texts(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> list[str]:
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode
    import dns.rdatatype

    out: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype != rdtype:
            continue
        for rr in rrset:
            if rdtype == dns.rdatatype.TXT:
                out.append(b"".join(rr.strings).decode("utf-8", "replace"))
            else:
                out.append(rr.to_text())
    return out


class DnsCheck:
    def __init__(self, config: DnsConfig, ctx: CheckContext) -> None:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        self.config = config
        self._host, self._port = parse_server(config.server)
        self._rdtype = dns.rdatatype.from_text(config.record_type)
        self._expect = [_expectation(e) for e in config.expect]
        self._what = f"{config.query} {config.record_type}"

    async def run(self) -> CheckResult:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        where = f"{self.config.server}"
        try:
            address = await self._address()
        except OSError as exc:
            return unknown(f"cannot resolve the server name {self._host}: {exc}")
        query = dns.message.make_query(self.config.query, self._rdtype)
        budget = self.config.timeout * _DEADLINE_SHARE
        start = time.perf_counter()
        try:
            response = await self._ask(query, address, budget)
        except dns.exception.Timeout:
            return critical(f"no answer from {where} for {self._what} within {budget:.1f}s")
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            return critical(f"query to {where} for {self._what} failed: {exc}")
        seconds = time.perf_counter() - start
        return self._judge(response, where, seconds)

    async def _address(self) -> str:
        try:
            ipaddress.ip_address(self._host)
            return self._host
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(
                self._host, self._port, type=socket.SOCK_DGRAM
            )
            return str(infos[0][4][0])

    async def _ask(
        self, query: dns.message.Message, address: str, budget: float
    ) -> dns.message.Message:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        if self.config.protocol == "tcp":
            return await dns.asyncquery.tcp(query, address, timeout=budget, port=self._port)
        response, _used_tcp = await dns.asyncquery.udp_with_fallback(
            query, address, timeout=budget, port=self._port
        )
        return response

    def _judge(self, response: dns.message.Message, where: str, seconds: float) -> CheckResult:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        rcode = response.rcode()
        answers = answer_texts(response, self._rdtype)
        facts = {"rcode": float(rcode), "answers": float(len(answers)), "query_seconds": seconds}
        if rcode == dns.rcode.NXDOMAIN:
            return critical(f"{where}: {self.config.query} does not exist (NXDOMAIN)", **facts)
        if rcode != dns.rcode.NOERROR:
            name = dns.rcode.to_text(rcode)
            return critical(f"{where} answered {name} for {self._what}", **facts)
        if not answers and not self.config.allow_empty:
            return critical(f"{where}: no {self._what} record (empty answer)", **facts)
        missing = [
            e
            for e, want in zip(self.config.expect, self._expect, strict=True)
            if not any(_matches(want, a) for a in answers)
        ]
        if missing:
            got = ", ".join(answers) or "nothing"
            return critical(
                f"{where}: {self._what} answer {got} lacks {', '.join(missing)}", **facts
            )
        return ok(f"{where}: {self._what} -> {', '.join(answers) or 'no records'}", **facts)


def _matches(want: re.Pattern[str] | str, answer: str) -> bool:
    if isinstance(want, str):
        return answer.rstrip(".").lower() == want
    return want.search(answer) is not None


TYPE = CheckType(DnsConfig, DnsCheck)
