"""tcp: connect, optionally over TLS, optionally send a string and expect a regex in the reply."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical, ok, unknown
from checks.tls import (
    HandshakeLog,
    OptionalTls,
    TlsSetupError,
    build_context,
    chain_facts,
    expiry_verdict,
    explain_failure,
)
from core.errors import os_error_text
from core.names import Regex
from core.status import Status

READ_CAP = 64 * 1024


def unescape(text: str) -> str:
    r"""`\r\n`, `\t` and `\\` in YAML single-quoted or plain strings become real bytes."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


class TcpConfig(CheckConfig):
    type: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    send: str | None = None
    expect: Regex | None = None
    # `true`, or the options of the http check's `tls:` (verify, ca_file, warn_days ...).
    tls: OptionalTls = None

    metric_facts: ClassVar[Mapping[str, str]] = {
        "tls_not_after": "tls_cert_not_after_timestamp_seconds",
        "tls_earliest_not_after": "tls_chain_earliest_not_after_timestamp_seconds",
    }


class TcpCheck:
    def __init__(self, config: TcpConfig, ctx: CheckContext) -> None:
        self.config = config
        self._expect = re.compile(config.expect.encode()) if config.expect else None
        self._send = unescape(config.send).encode() if config.send else None
        self._clock = ctx.clock
        self._handshakes = HandshakeLog()
        self._ssl: ssl.SSLContext | None = None
        self._plain = config.tls is None and self._send is None and self._expect is None
        self._numeric = numeric_address(config.host, config.port)

    async def run(self) -> CheckResult:
        result = await self._exchange()
        tls = self.config.tls
        last = self._handshakes.last
        if tls is None or last is None:
            return result
        facts = {**result.facts, **chain_facts(last.chain)}
        facts["tls_seconds"] = last.seconds or 0.0
        if "connect_seconds" in facts:  # the TCP part only, like the http check
            facts["connect_seconds"] = max(facts["connect_seconds"] - facts["tls_seconds"], 0.0)
        if result.status is Status.OK:
            result = expiry_verdict(last.chain, tls, self._clock(), result.message)
        return CheckResult(result.status, result.message, facts)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        cfg = self.config
        if cfg.tls is None:
            return await asyncio.open_connection(cfg.host, cfg.port)
        if self._ssl is None:
            self._ssl = build_context(cfg.tls, self._handshakes)
        self._handshakes.clear()
        return await asyncio.open_connection(
            cfg.host, cfg.port, ssl=self._ssl, server_hostname=cfg.tls.server_name or cfg.host
        )

    async def _exchange(self) -> CheckResult:
        cfg = self.config
        target = f"{cfg.host}:{cfg.port}"
        start = time.perf_counter()
        if self._plain:
            return await self._connect_only(target, start)
        try:
            reader, writer = await self._connect()
        except TlsSetupError as exc:
            return unknown(str(exc))
        except ssl.SSLError as exc:  # before OSError: SSLError is one
            last = self._handshakes.last
            chain = last.chain if last is not None else ()
            host = (cfg.tls.server_name if cfg.tls else None) or cfg.host
            return critical(f"{target}: {explain_failure(exc, chain, host, self._clock())}")
        except OSError as exc:
            return critical(f"connect to {target} failed: {os_error_text(exc)}")
        connect = time.perf_counter() - start
        try:
            if self._send:
                writer.write(self._send)
                await writer.drain()
            if self._expect is None:
                return ok(f"connected to {target}", connect_seconds=connect)
            return await self._await_expect(reader, target, connect)
        except OSError as exc:
            return critical(f"{target}: {os_error_text(exc)}", connect_seconds=connect)
        finally:
            writer.close()

    async def _connect_only(self, target: str, start: float) -> CheckResult:
        """Connect and close on a bare socket: no streams, no transport, a third less
        CPU per probe than open_connection (measured: docs/performance.md, issue 2)."""
        loop = asyncio.get_running_loop()
        try:
            infos = self._numeric or await loop.getaddrinfo(
                self.config.host, self.config.port, type=socket.SOCK_STREAM
            )
            await connect_any(loop, infos)
        except OSError as exc:
            return critical(f"connect to {target} failed: {os_error_text(exc)}")
        return ok(f"connected to {target}", connect_seconds=time.perf_counter() - start)

    async def _await_expect(
        self, reader: asyncio.StreamReader, target: str, connect: float
    ) -> CheckResult:
        assert self._expect is not None
        seen = b""
        # Stop reading a little before the runner's timeout, so a peer that talks
        # but never says the expected thing is reported with what it did say.
        try:
            async with asyncio.timeout(self.config.timeout * 0.9):
                while len(seen) < READ_CAP:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    seen += chunk
                    if self._expect.search(seen):
                        return ok(f"{target} answered as expected", connect_seconds=connect)
        except TimeoutError:
            if not seen:
                return critical(f"{target} sent nothing", connect_seconds=connect)
        got = seen[:80].decode("utf-8", "replace")
        return critical(
            f"{target} reply does not match {self.config.expect!r}: got {got!r}",
            connect_seconds=connect,
        )


AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr) from getaddrinfo


def numeric_address(host: str, port: int) -> Sequence[AddrInfo] | None:
    """The address of an IP literal, resolved once (no DNS involved); None for names."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None


async def connect_any(loop: asyncio.AbstractEventLoop, infos: Sequence[AddrInfo]) -> None:
    """Try each address in turn like open_connection; raise what failed."""
    errors: list[OSError] = []
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            return
        except OSError as exc:
            errors.append(exc)
        finally:
            sock.close()
    if len({str(e) for e in errors}) == 1:
        raise errors[0]
    raise OSError("Multiple exceptions: " + ", ".join(str(e) for e in errors))


TYPE = CheckType(TcpConfig, TcpCheck)
