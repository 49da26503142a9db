"""load: system load average, per CPU by default (so thresholds travel between hosts)."""

from __future__ import annotations

import asyncio
from typing import Literal

import psutil

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType
from checks.thresholds import grade


class LoadConfig(CheckConfig):
    type: Literal["load"]
    per_cpu: bool = True
    warn_load1: float | None = None
    critical_load1: float | None = None
    warn_load5: float | None = 2.0
    critical_load5: float | None = 4.0
    warn_load15: float | None = None
    critical_load15: float | None = None


class LoadCheck:
    def __init__(self, config: LoadConfig, ctx: CheckContext) -> None:
        self.config = config

    async def run(self) -> CheckResult:
        return await asyncio.to_thread(self._probe)

    def _probe(self) -> CheckResult:
        cfg = self.config
        cpus = psutil.cpu_count() or 1
        divisor = cpus if cfg.per_cpu else 1
        l1, l5, l15 = (v / divisor for v in psutil.getloadavg())
        status = max(
            grade(l1, cfg.warn_load1, cfg.critical_load1),
            grade(l5, cfg.warn_load5, cfg.critical_load5),
            grade(l15, cfg.warn_load15, cfg.critical_load15),
            key=lambda s: s.badness,
        )
        unit = " per CPU" if cfg.per_cpu else ""
        msg = f"load{unit} {l1:.2f} {l5:.2f} {l15:.2f} ({cpus} CPUs)"
        facts = {"load1": l1, "load5": l5, "load15": l15, "cpus": float(cpus)}
        return CheckResult(status, msg, facts)


TYPE = CheckType(LoadConfig, LoadCheck)
