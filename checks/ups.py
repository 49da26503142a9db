"""ups: power via Network UPS Tools: on battery, low battery, charge and runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType
from checks.nut import NutConnectError, NutError, list_vars
from core.durations import Duration
from core.errors import os_error_text
from core.humanize import duration
from core.redact import describe_file
from core.status import Status

_FLAGS = {
    "OL": "online",
    "OB": "on battery",
    "LB": "low battery",
    "HB": "high battery",
    "RB": "battery needs replacing",
    "CHRG": "charging",
    "DISCHRG": "discharging",
    "BYPASS": "on bypass (no battery protection)",
    "CAL": "calibrating",
    "OFF": "output off",
    "OVER": "overloaded",
    "TRIM": "trimming voltage",
    "BOOST": "boosting voltage",
    "FSD": "forced shutdown",
}
CRITICAL_FLAGS = ("LB", "OFF", "FSD")
WARNING_FLAGS = ("OB", "RB", "BYPASS", "OVER")
_ERRORS = {
    "DRIVER-NOT-CONNECTED": "upsd has no connection to the UPS driver",
    "DATA-STALE": "the UPS driver's data is stale",
    "UNKNOWN-UPS": "upsd does not know this UPS",
    "ACCESS-DENIED": "upsd denied access (check username and password)",
}


class UpsConfig(CheckConfig):
    type: Literal["ups"]
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 3493
    ups: Annotated[str, Field(min_length=1, pattern=r"^[^\s\"]+$")]
    username: str | None = None
    password_file: str | None = None
    critical_charge: Annotated[float, Field(ge=0, le=100)] | None = 20.0  # percent
    critical_runtime: Annotated[Duration, Field(ge=0)] | None = 300.0

    metric_facts: ClassVar[Mapping[str, str]] = {
        "on_battery": "ups_on_battery",
        "battery_charge_ratio": "ups_battery_charge_ratio",
        "runtime_seconds": "ups_runtime_seconds",
    }


def _number(values: Mapping[str, str], key: str) -> float | None:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


class UpsCheck:
    def __init__(self, config: UpsConfig, ctx: CheckContext) -> None:
        self.config = config

    async def run(self) -> CheckResult:
        cfg = self.config
        where = f"{cfg.ups}@{cfg.host}:{cfg.port}"
        try:
            password = await self._password()
        except OSError as exc:
            where = describe_file(cfg.password_file)
            return CheckResult(
                Status.UNKNOWN, f"cannot read password_file {where}: {os_error_text(exc)}"
            )
        except UnicodeDecodeError:
            return CheckResult(Status.UNKNOWN, "cannot read password_file: not UTF-8 text")
        try:
            values = await list_vars(cfg.host, cfg.port, cfg.ups, cfg.username, password)
        except NutConnectError as exc:
            return CheckResult(Status.CRITICAL, f"cannot connect to upsd at {where}: {exc}")
        except NutError as exc:
            reason = _ERRORS.get(exc.code, exc.text)
            return CheckResult(Status.UNKNOWN, f"{where}: {reason} ({exc.code})")
        return evaluate(cfg, values)

    async def _password(self) -> str | None:
        if self.config.password_file is None:
            return None
        text = await asyncio.to_thread(Path(self.config.password_file).read_text, "utf-8")
        return text.rstrip("\r\n")


def evaluate(cfg: UpsConfig, values: Mapping[str, str]) -> CheckResult:
    status_text = values.get("ups.status", "").strip()
    flags = status_text.split()
    if not flags or flags == ["WAIT"]:
        return CheckResult(Status.UNKNOWN, f"UPS {cfg.ups} reports no status yet ({status_text!r})")
    charge = _number(values, "battery.charge")
    runtime = _number(values, "battery.runtime")
    facts = {"on_battery": 1.0 if "OB" in flags else 0.0, "low_battery": float("LB" in flags)}
    if charge is not None:
        facts["battery_charge_ratio"] = charge / 100.0
    if runtime is not None:
        facts["runtime_seconds"] = runtime
    load = _number(values, "ups.load")
    if load is not None:
        facts["load_ratio"] = load / 100.0
    criticals = [_FLAGS[f] for f in CRITICAL_FLAGS if f in flags]
    if cfg.critical_runtime is not None and runtime is not None and runtime < cfg.critical_runtime:
        criticals.append(
            f"runtime {duration(runtime)} below critical_runtime {duration(cfg.critical_runtime)}"
        )
    if cfg.critical_charge is not None and charge is not None and charge < cfg.critical_charge:
        criticals.append(f"charge {charge:g}% below critical_charge {cfg.critical_charge:g}%")
    warnings = [_FLAGS[f] for f in WARNING_FLAGS if f in flags]
    described = ", ".join(_FLAGS.get(f, f) for f in flags)
    details = [described]
    if charge is not None:
        details.append(f"charge {charge:g}%")
    if runtime is not None:
        details.append(f"runtime {duration(runtime)}")
    summary = "; ".join(details)
    if criticals:
        return CheckResult(Status.CRITICAL, f"{'; '.join(criticals)} ({summary})", facts)
    if warnings:
        return CheckResult(Status.WARNING, f"{'; '.join(warnings)} ({summary})", facts)
    return CheckResult(Status.OK, summary, facts)


TYPE = CheckType(UpsConfig, UpsCheck)
