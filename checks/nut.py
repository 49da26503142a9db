"""A small async client for the Network UPS Tools protocol (upsd, TCP 3493).

Only what monitoring needs: optional USERNAME/PASSWORD, then LIST VAR.
Lines and replies are capped, so a confused or hostile server cannot make the
agent hold unbounded data.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

LINE_LIMIT = 64 * 1024
MAX_VARS = 5000
_VAR = re.compile(r'^VAR (\S+) (\S+) "(.*)"$')
_UNESCAPE = re.compile(r"\\(.)")


class NutError(Exception):
    """upsd answered `ERR <code>`, or broke the protocol."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class NutConnectError(Exception):
    pass


async def _read_line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise NutError("PROTOCOL", f"reply line longer than {LINE_LIMIT} bytes") from None
    if not raw:
        raise NutError("PROTOCOL", "upsd closed the connection")
    line = raw.decode("utf-8", "replace").rstrip("\r\n")
    if line.startswith("ERR "):
        code = line[4:].split(" ", 1)[0]
        raise NutError(code, line)
    return line


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> str:
    writer.write(line.encode() + b"\n")
    await writer.drain()
    return await _read_line(reader)


async def _login(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, username: str, password: str
) -> None:
    for command in (f"USERNAME {quote(username)}", f"PASSWORD {quote(password)}"):
        reply = await _command(reader, writer, command)
        if not reply.startswith("OK"):
            # Never echo the command: it holds the password.
            raise NutError("PROTOCOL", f"unexpected reply to login: {reply[:80]!r}")


async def list_vars(
    host: str, port: int, ups: str, username: str | None = None, password: str | None = None
) -> dict[str, str]:
    """All variables of one UPS. Raises NutConnectError or NutError."""
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
    except OSError as exc:
        raise NutConnectError(exc.strerror or str(exc)) from None
    try:
        if username is not None:
            await _login(reader, writer, username, password or "")
        first = await _command(reader, writer, f"LIST VAR {quote(ups)}")
        if first != f"BEGIN LIST VAR {ups}":
            raise NutError("PROTOCOL", f"unexpected reply to LIST VAR: {first[:80]!r}")
        return await _read_vars(reader, ups)
    except OSError as exc:  # reset in mid-conversation
        raise NutError("CONNECTION", f"connection lost: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            writer.write(b"LOGOUT\n")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read_vars(reader: asyncio.StreamReader, ups: str) -> dict[str, str]:
    values: dict[str, str] = {}
    while True:
        line = await _read_line(reader)
        if line == f"END LIST VAR {ups}":
            return values
        match = _VAR.match(line)
        if not match or match.group(1) != ups:
            raise NutError("PROTOCOL", f"unexpected line in LIST VAR: {line[:80]!r}")
        if len(values) >= MAX_VARS:
            raise NutError("PROTOCOL", f"more than {MAX_VARS} variables")
        values[match.group(2)] = _UNESCAPE.sub(r"\1", match.group(3))


def quote(word: str) -> str:
    """Quote a protocol argument; reject line breaks, which would start another command."""
    if "\n" in word or "\r" in word:
        raise NutError("PROTOCOL", "line break in a NUT argument")
    if word and all(c.isalnum() or c in "-_.@:" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
