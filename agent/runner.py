"""Runs one probe: concurrency limit, timeout, never-raise, severity, dependencies."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from agent.results import DEPENDENCY_DOWN, FAILING, ResultBook
from checks.base import Check, CheckResult, Status, format_duration

log = logging.getLogger("vaktpost.runner")


class Runner:
    def __init__(self, book: ResultBook, max_concurrency: int) -> None:
        self.book = book
        self.semaphore = asyncio.Semaphore(max_concurrency)

    async def run(self, check: Check) -> CheckResult:
        cfg = check.config
        async with self.semaphore:
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
