"""disk: free space (and optionally writability) of a filesystem path."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Annotated, Literal

import psutil
from pydantic import Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical
from checks.thresholds import grade
from core.errors import os_error_text


class DiskConfig(CheckConfig):
    type: Literal["disk"]
    path: str | None = None  # None: the agent's state_dir
    warn_percent: Annotated[float, Field(ge=0, le=100)] = 80.0
    critical_percent: Annotated[float, Field(ge=0, le=100)] = 90.0
    writable: bool = False


class DiskCheck:
    def __init__(self, config: DiskConfig, ctx: CheckContext) -> None:
        self.config = config
        self._path = config.path or str(ctx.state_dir)

    async def run(self) -> CheckResult:
        return await asyncio.to_thread(self._probe)

    def _probe(self) -> CheckResult:
        try:
            usage = psutil.disk_usage(self._path)
        except OSError as exc:
            return critical(f"{self._path}: {os_error_text(exc)}")
        facts = {
            "used_percent": usage.percent,
            "free_bytes": float(usage.free),
            "total_bytes": float(usage.total),
        }
        if self.config.writable:
            try:
                with tempfile.NamedTemporaryFile(dir=self._path, prefix=".vaktpost-probe-") as f:
                    f.write(b"ok")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                why = os_error_text(exc)
                return critical(f"{self._path} is not writable: {why}", **facts)
        status = grade(usage.percent, self.config.warn_percent, self.config.critical_percent)
        msg = f"{self._path} {usage.percent:.1f}% used, {usage.free / 2**30:.1f} GiB free"
        return CheckResult(status, msg, facts)


TYPE = CheckType(DiskConfig, DiskCheck)
