"""command: run argv with the JSON payload on stdin (e.g. a local GSM modem tool).

Exit 0 is delivered. Exit codes that say "this will never work" (64 usage,
65 data, 77 permission, 78 config, 126/127 not executable/not found) are
permanent; any other failure, and a timeout, may retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig
from alerting.channels.interface import PermanentError, RetryableError
from alerting.channels.recipient import fill

PERMANENT_EXITS = frozenset({64, 65, 77, 78, 126, 127})


class CommandChannelConfig(ChannelConfig):
    type: Literal["command"]
    argv: Annotated[tuple[str, ...], Field(min_length=1)]


class CommandChannel:
    def __init__(self, name: str, config: CommandChannelConfig) -> None:
        self.name = name
        self.config = config

    async def send(self, payload: dict[str, Any]) -> None:
        program = self.config.argv[0]
        argv = [fill(arg, payload, self.name) for arg in self.config.argv]
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise PermanentError(f"{program}: {exc.strerror}") from None
        try:
            async with asyncio.timeout(self.config.timeout):
                _, stderr = await proc.communicate(body)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RetryableError(f"{program}: timed out after {self.config.timeout:g}s") from None
        code = proc.returncode
        if code == 0:
            return
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        text = f"{program}: exit {code}" + (f": {last[0][:200]}" if last[0] else "")
        raise (PermanentError if code in PERMANENT_EXITS else RetryableError)(text)

    async def close(self) -> None:
        return None
