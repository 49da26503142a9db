"""memory: RAM and swap use."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import psutil
from pydantic import Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType
from checks.thresholds import grade

Percent = Annotated[float, Field(ge=0, le=100)]


class MemoryConfig(CheckConfig):
    type: Literal["memory"]
    warn_percent: Percent = 90.0
    critical_percent: Percent = 95.0
    swap_warn_percent: Percent | None = None
    swap_critical_percent: Percent | None = None


class MemoryCheck:
    def __init__(self, config: MemoryConfig, ctx: CheckContext) -> None:
        self.config = config

    async def run(self) -> CheckResult:
        return await asyncio.to_thread(self._probe)

    def _probe(self) -> CheckResult:
        cfg = self.config
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        facts = {
            "used_percent": mem.percent,
            "available_bytes": float(mem.available),
            "total_bytes": float(mem.total),
            "swap_used_percent": swap.percent,
        }
        status = max(
            grade(mem.percent, cfg.warn_percent, cfg.critical_percent),
            grade(swap.percent, cfg.swap_warn_percent, cfg.swap_critical_percent),
            key=lambda s: s.badness,
        )
        msg = (
            f"memory {mem.percent:.1f}% used ({mem.available / 2**30:.1f} GiB available), "
            f"swap {swap.percent:.1f}% used"
        )
        return CheckResult(status, msg, facts)


TYPE = CheckType(MemoryConfig, MemoryCheck)
