"""ups check against a real upsd with the dummy-ups driver; check_ups is the oracle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.metrics import render_state
from agent.results import CheckState
from checks.base import CheckContext, Status
from checks.ups import UpsCheck, UpsConfig
from tests.helpers import free_port, wait_until
from tests.nut_fixtures import ADMIN_PASSWORD, UPS, NutServer, check_ups


def config(port: int, **extra: Any) -> UpsConfig:
    return UpsConfig(**({"name": "ups", "type": "ups", "port": port, "ups": UPS} | extra))


async def probe(port: int, **extra: Any) -> Any:
    return await UpsCheck(config(port, **extra), CheckContext(Path("/nonexistent"), "a")).run()


@pytest.mark.parametrize(
    ("status", "charge", "runtime", "expected", "message"),
    [
        ("OL", 100, 1800, Status.OK, "online; charge 100%; runtime 30 min"),
        ("OB", 60, 900, Status.WARNING, "on battery (on battery; charge 60%; runtime 15 min)"),
        (
            "OB LB",
            10,
            120,
            Status.CRITICAL,
            "low battery; runtime 2 min below critical_runtime 5 min; charge 10% below "
            "critical_charge 20% (on battery, low battery; charge 10%; runtime 2 min)",
        ),
    ],
)
async def test_power_states_agree_with_check_ups(
    nut_server: NutServer,
    status: str,
    charge: float,
    runtime: float,
    expected: Status,
    message: str,
) -> None:
    nut_server.set_state(status, charge, runtime)
    result = await probe(nut_server.port)
    assert result.status is expected
    assert result.message == message
    assert result.facts["on_battery"] == (1.0 if "OB" in status else 0.0)
    assert result.facts["battery_charge_ratio"] == pytest.approx(charge / 100)
    assert result.facts["runtime_seconds"] == runtime
    code, text = check_ups(nut_server.port)
    assert code == expected.exit_code, text


async def test_runtime_below_threshold_is_critical(nut_server: NutServer) -> None:
    nut_server.set_state("OB", 80, 200)
    result = await probe(nut_server.port, critical_runtime="10m", critical_charge=None)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("runtime 3.3 min below critical_runtime 10 min")
    # check_ups has no runtime threshold: it only sees "on battery" (a warning).
    assert check_ups(nut_server.port)[0] == 1


async def test_low_charge_on_line_agrees_with_check_ups_battpct(nut_server: NutServer) -> None:
    nut_server.set_state("OL", 15, 1800)
    result = await probe(nut_server.port)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("charge 15% below critical_charge 20%")
    code, text = check_ups(nut_server.port, "-v", "BATTPCT", "-w", "25", "-c", "20")
    assert code == 2, text


async def test_login_and_unknown_ups(nut_server: NutServer, tmp_path: Path) -> None:
    nut_server.set_state("OL", 100, 1800)
    secret = tmp_path / "pw"
    secret.write_text(ADMIN_PASSWORD + "\n")
    with_login = await probe(nut_server.port, username="admin", password_file=str(secret))
    assert with_login.status is Status.OK
    missing = await probe(nut_server.port, ups="nosuch")
    assert missing.status is Status.UNKNOWN
    assert missing.message == (
        f"nosuch@127.0.0.1:{nut_server.port}: upsd does not know this UPS (UNKNOWN-UPS)"
    )
    unreadable = await probe(nut_server.port, username="admin", password_file="/nonexistent")
    assert unreadable.status is Status.UNKNOWN
    assert unreadable.message.startswith("cannot read password_file")


async def test_closed_port_is_critical() -> None:
    port = free_port()
    result = await probe(port)
    assert result.status is Status.CRITICAL
    assert result.message.startswith(f"cannot connect to upsd at {UPS}@127.0.0.1:{port}: ")


async def test_protocol_garbage_is_unknown() -> None:
    async def confused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HELLO I AM NOT UPSD\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(confused, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await probe(port)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is Status.UNKNOWN
    assert "unexpected reply to LIST VAR: 'HELLO I AM NOT UPSD'" in result.message


async def test_metrics_from_facts(nut_server: NutServer) -> None:
    nut_server.set_state("OB", 60, 900)
    cfg = config(nut_server.port)
    state = CheckState(cfg)
    state.record(await probe(nut_server.port))
    rendered = "".join(render_state(state).values())
    assert 'vaktpost_ups_on_battery{check="ups"} 1.0' in rendered
    assert 'vaktpost_ups_battery_charge_ratio{check="ups"} 0.6' in rendered
    assert 'vaktpost_ups_runtime_seconds{check="ups"} 900.0' in rendered


async def test_driver_killed_is_unknown(nut_server: NutServer) -> None:
    nut_server.set_state("OL", 100, 1800)
    nut_server.kill_driver()
    try:
        wait_until(nut_server.driver_gone, timeout=20, what="upsd to lose the driver")
        result = await probe(nut_server.port)
        assert result.status is Status.UNKNOWN
        assert result.message == (
            f"{UPS}@127.0.0.1:{nut_server.port}: upsd has no connection to the UPS driver "
            "(DRIVER-NOT-CONNECTED)"
        )
        # check_ups calls this CRITICAL; DESIGN.md defines it as unknown (cannot tell).
        code, text = check_ups(nut_server.port)
        assert code != 0 and "DRIVER-NOT-CONNECTED" in text
    finally:
        nut_server.start_driver()
        wait_until(
            lambda: nut_server.read().get("ups.status") == "OL", timeout=20, what="driver back"
        )
