"""tcp: connect, optionally send a string and expect a regex in the reply."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Literal

from pydantic import Field, field_validator

from checks.base import (
    CheckConfig,
    CheckContext,
    CheckResult,
    CheckType,
    critical,
    ok,
    os_error_text,
)

READ_CAP = 64 * 1024


def unescape(text: str) -> str:
    r"""`\r\n`, `\t` and `\\` in YAML single-quoted or plain strings become real bytes."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


class TcpConfig(CheckConfig):
    type: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    send: str | None = None
    expect: str | None = None

    @field_validator("expect")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value


class TcpCheck:
    def __init__(self, config: TcpConfig, ctx: CheckContext) -> None:
        self.config = config
        self._expect = re.compile(config.expect.encode()) if config.expect else None
        self._send = unescape(config.send).encode() if config.send else None

    async def run(self) -> CheckResult:
        cfg = self.config
        target = f"{cfg.host}:{cfg.port}"
        start = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
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


TYPE = CheckType(TcpConfig, TcpCheck)
