"""Runs one probe: fair admission, timeout, never-raise, severity, dependencies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from agent.admission import Admission
from agent.results import DEPENDENCY_DOWN, FAILING, ResultBook
from checks.base import Check, CheckResult
from core.durations import format_duration
from core.status import Status

log = logging.getLogger("vaktpost.runner")


# A probe that took this share of its timeout counts as hanging for admission.
SLOW_SHARE = 0.5


class Runner:
    def __init__(
        self,
        book: ResultBook,
        max_concurrency: int,
        observe_wait: Callable[[float], None] = lambda _s: None,
    ) -> None:
        self.book = book
        self.admission = Admission(max_concurrency, observe_wait)
        self._slow: set[str] = set()  # checks whose last probe hung

    async def run(self, check: Check) -> CheckResult:
        cfg = check.config
        async with self.admission.slot(cfg.name in self._slow):
            start = time.perf_counter()
            try:
                async with asyncio.timeout(cfg.timeout):
                    result = await check.run()
            except TimeoutError:
                result = CheckResult(
                    Status.CRITICAL, f"timed out after {format_duration(cfg.timeout)}"
                )
            except Exception as exc:  # a probe must never take the agent down
                log.warning("check raised", extra={"check": cfg.name, "error": repr(exc)})
                result = CheckResult(Status.UNKNOWN, f"check raised {type(exc).__name__}: {exc}")
            duration = time.perf_counter() - start
        if duration >= SLOW_SHARE * cfg.timeout:
            self._slow.add(cfg.name)
        else:
            self._slow.discard(cfg.name)
        return self.finish(check, result, duration)

    def finish(self, check: Check, result: CheckResult, duration: float) -> CheckResult:
        cfg = check.config
        status = result.status
        if status is Status.CRITICAL and cfg.severity == "warning":
            status = Status.WARNING
        done = CheckResult(status, result.message, result.facts, duration, time.time())
        return self.judge(check, done)

    def judge(self, check: Check, result: CheckResult) -> CheckResult:
        """A failing result is `unreachable` while a check it depends on is down."""
        if result.status not in FAILING:
            return result
        for dep in check.config.depends_on:
            dep_status = self.book.status_of(dep)
            if dep_status is not None and dep_status in DEPENDENCY_DOWN:
                message = f"unreachable: depends on {dep} which is {dep_status.label}; "
                return replace(result, status=Status.UNREACHABLE, message=message + result.message)
        return result
