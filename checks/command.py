"""command: any monitoring-plugins compatible plugin (exit 0-3, perfdata into facts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, unknown
from core.errors import os_error_text
from core.status import Status

OUTPUT_CAP = 64 * 1024
_EXIT_STATUS = {0: Status.OK, 1: Status.WARNING, 2: Status.CRITICAL, 3: Status.UNKNOWN}
# label=value[UOM];warn;crit;min;max, label optionally in single quotes.
_PERF = re.compile(r"""('(?:[^']|'')+'|[^\s=']+)=(-?[0-9.]+(?:[eE][-+]?\d+)?)([a-zA-Z%/]*)""")
_UNIT_SCALE = {"ms": 0.001, "us": 1e-6, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


class CommandConfig(CheckConfig):
    type: Literal["command"]
    has_perfdata: ClassVar[bool] = True
    argv: Annotated[tuple[str, ...], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class Perf:
    """One perfdata value as the plugin printed it: label unquoted, value in `unit`."""

    label: str
    value: float
    unit: str


class PerfFacts(dict[str, float]):
    """The facts of a plugin's output, carrying its perfdata as printed.

    The runner rebuilds every result but hands the facts mapping on as it is, so
    the perfdata reaches the metrics (vaktpost_check_perfdata) on it without a
    change to the facts' JSON.
    """

    __slots__ = ("perfdata",)

    def __init__(self, facts: dict[str, float], perfdata: tuple[Perf, ...] = ()) -> None:
        super().__init__(facts)
        self.perfdata = perfdata


def perfdata_of(result: CheckResult) -> tuple[Perf, ...]:
    return result.facts.perfdata if isinstance(result.facts, PerfFacts) else ()


def unquote(label: str) -> str:
    return label[1:-1].replace("''", "'") if label.startswith("'") else label


def fact_name(label: str) -> str:
    return "perf_" + re.sub(r"[^a-zA-Z0-9_]", "_", unquote(label))


def parse_perfdata(text: str) -> PerfFacts:
    """Facts are scaled to base units (ms to seconds, KB to bytes) like Prometheus;
    the perfdata keeps the printed value and unit. A label printed twice: the last wins."""
    facts: dict[str, float] = {}
    printed: dict[str, Perf] = {}
    for label, value, uom in _PERF.findall(text):
        try:
            number = float(value)
        except ValueError:
            continue
        facts[fact_name(label)] = number * _UNIT_SCALE.get(uom, 1.0)
        name = unquote(label)
        printed.pop(name, None)
        printed[name] = Perf(name, number, uom)
    return PerfFacts(facts, tuple(printed.values()))


def parse_output(raw: bytes) -> tuple[str, PerfFacts]:
    """First line's text is the message; perfdata after `|` on any line becomes facts."""
    text = raw.decode("utf-8", "replace")
    lines = text.splitlines() or [""]
    first, _, perf = lines[0].partition("|")
    perf_parts = [perf]
    in_long_perf = False
    for line in lines[1:]:
        if in_long_perf:
            perf_parts.append(line)
        elif "|" in line:
            in_long_perf = True
            perf_parts.append(line.partition("|")[2])
    return first.strip(), parse_perfdata(" ".join(perf_parts))


class CommandCheck:
    def __init__(self, config: CommandConfig, ctx: CheckContext) -> None:
        self.config = config

    async def run(self) -> CheckResult:
        argv = self.config.argv
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout kills helpers too
            )
        except FileNotFoundError:
            return unknown(f"plugin not found: {argv[0]}")
        except PermissionError:
            return unknown(f"plugin not executable: {argv[0]}")
        except OSError as exc:
            return unknown(f"cannot start {argv[0]}: {os_error_text(exc)}")
        try:
            output, truncated = await read_capped(proc.stdout, OUTPUT_CAP)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                await kill_group(proc)
        message, facts = parse_output(output)
        if truncated:
            facts["output_truncated"] = 1.0
        status = _EXIT_STATUS.get(code)
        if status is None:
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            text = f"plugin ended with {reason}: {message}".rstrip(": ")
            return CheckResult(Status.UNKNOWN, text, facts)
        return CheckResult(status, message or f"exit code {code}, no output", facts)


async def read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    """Keep the first `cap` bytes and drain the rest, so the child never blocks on a full pipe."""
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return bytes(kept), truncated


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Reaping here is what keeps zombies away, even when we were cancelled.
    with contextlib.suppress(ProcessLookupError):
        await asyncio.shield(proc.wait())


TYPE = CheckType(CommandConfig, CommandCheck)
