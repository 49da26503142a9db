"""process: how many processes match a name and/or command-line regex."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal

import psutil
from pydantic import Field, model_validator

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, critical, ok
from core.names import Regex


class ProcessConfig(CheckConfig):
    type: Literal["process"]
    name_regex: Regex | None = None
    cmdline_regex: Regex | None = None
    min_count: Annotated[int, Field(ge=0)] = 1
    max_count: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _needs_matcher(self) -> ProcessConfig:
        if self.name_regex is None and self.cmdline_regex is None:
            raise ValueError("set name_regex or cmdline_regex")
        return self


class ProcessCheck:
    def __init__(self, config: ProcessConfig, ctx: CheckContext) -> None:
        self.config = config
        self._name = re.compile(config.name_regex) if config.name_regex else None
        self._cmd = re.compile(config.cmdline_regex) if config.cmdline_regex else None

    async def run(self) -> CheckResult:
        return await asyncio.to_thread(self._probe)

    def _matches(self, proc: psutil.Process) -> bool:
        try:
            if self._name and not self._name.search(proc.info["name"] or ""):
                return False
            if self._cmd and not self._cmd.search(" ".join(proc.info["cmdline"] or [])):
                return False
        except (psutil.Error, KeyError):
            return False
        return True

    def _probe(self) -> CheckResult:
        cfg = self.config
        count = sum(1 for p in psutil.process_iter(["name", "cmdline"]) if self._matches(p))
        pattern = " ".join(filter(None, [cfg.name_regex, cfg.cmdline_regex]))
        if count < cfg.min_count:
            return critical(
                f"{count} processes match {pattern!r}, need {cfg.min_count}", count=count
            )
        if cfg.max_count is not None and count > cfg.max_count:
            return critical(
                f"{count} processes match {pattern!r}, at most {cfg.max_count}", count=count
            )
        return ok(f"{count} processes match {pattern!r}", count=count)


TYPE = CheckType(ProcessConfig, ProcessCheck)
