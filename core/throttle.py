"""An async read run on demand, at most once in a while, shared by the callers
that arrive while it runs: a fleet agent's view of the others is read when a
request reads it, not on a timer and not once per request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Throttle:
    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._at = -every  # clock time of the last run begun: the first call runs
        self._lock = asyncio.Lock()

    def due(self) -> bool:
        return self.clock() - self._at >= self.every

    async def run(self, read: Callable[[], Awaitable[None]]) -> None:
        """Await `read` unless one began less than `every` ago. A read that fails
        counts as run: a failing source is tried again `every` later, not per call."""
        if not self.due():
            return
        async with self._lock:
            if not self.due():
                return  # another caller ran it while this one waited
            self._at = self.clock()
            await read()
