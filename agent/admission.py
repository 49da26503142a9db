"""Admission of probes to the `max_concurrency` slots, fair under overload.

One first-come queue let 1,000 checks hanging on a silent server starve a
healthy 5 s check (it ran every 19 s). Here checks whose last probe hung (it
timed out or took most of its timeout) share at most half of the slots, and a
freed slot goes to the longest-waiting check that may take it: a healthy check
passes every hanging one in the queue, so it waits at most for a healthy slot.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Waiter:
    slow: bool
    since: float
    future: asyncio.Future[None] = field(repr=False)


class Admission:
    def __init__(self, limit: int, observe_wait: Callable[[float], None] = lambda _s: None) -> None:
        self.limit = limit
        self.slow_limit = max(1, limit // 2)
        self.active = 0
        self.active_slow = 0
        self.observe_wait = observe_wait
        self._queue: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _fits(self, slow: bool) -> bool:
        return self.active < self.limit and (not slow or self.active_slow < self.slow_limit)

    def _take(self, slow: bool) -> None:
        self.active += 1
        if slow:
            self.active_slow += 1

    @asynccontextmanager
    async def slot(self, slow: bool) -> AsyncIterator[None]:
        start = time.monotonic()
        # Every release admits whoever fits, so a queued waiter never fits now: a
        # newcomer that fits passes only slow waiters held back by their share.
        if self._fits(slow):
            self._take(slow)
        else:
            waiter = _Waiter(slow, start, asyncio.get_running_loop().create_future())
            self._queue.append(waiter)
            try:
                await waiter.future
            except BaseException:
                if waiter.future.done() and not waiter.future.cancelled():
                    self._release(slow)  # admitted just as it was cancelled
                else:
                    self._queue.remove(waiter)
                raise
        self.observe_wait(time.monotonic() - start)
        try:
            yield
        finally:
            self._release(slow)

    def _release(self, slow: bool) -> None:
        self.active -= 1
        if slow:
            self.active_slow -= 1
        self._admit()

    def _admit(self) -> None:
        """Oldest first, skipping slow waiters while the slow share is full."""
        for waiter in list(self._queue):
            if self.active >= self.limit:
                return
            if waiter.future.done() or not self._fits(waiter.slow):
                continue
            self._queue.remove(waiter)
            self._take(waiter.slow)
            waiter.future.set_result(None)
