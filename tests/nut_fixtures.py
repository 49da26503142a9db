"""A real NUT upsd with the dummy-ups driver on a free loopback port (see REAL_PARTS.md)."""

from __future__ import annotations

import grp
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, require_binary, wait_until

DRIVER = "/lib/nut/dummy-ups"
UPSD = "/lib/nut/upsd"
UPS = "dummy"
ADMIN_PASSWORD = "testpass"


def _own(path: Path, mode: int) -> None:
    """root:nut with `mode`, as upsd and the driver (running as nut) need; plain when not root."""
    if os.geteuid() == 0:
        os.chown(path, 0, grp.getgrnam("nut").gr_gid)
    path.chmod(mode)


class UpscError(Exception):
    pass


@dataclass
class NutServer:
    root: Path
    port: int
    driver: subprocess.Popen[bytes] | None = None
    upsd: subprocess.Popen[bytes] | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NUT_CONFPATH": str(self.etc),
            "NUT_STATEPATH": str(self.root / "state"),
        }

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.root / log).open("wb") as err:  # the child keeps its own descriptor
            return subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def write_state(self, status: str, charge: float, runtime: float) -> None:
        dev = self.etc / "dummy.dev"
        tmp = self.etc / "dummy.dev.new"
        tmp.write_text(
            f"ups.status: {status}\nbattery.charge: {charge:g}\nbattery.runtime: {runtime:g}\n"
        )
        _own(tmp, 0o640)
        tmp.replace(dev)  # atomic: the driver never reads half a file

    def read(self) -> dict[str, str]:
        """What upsd serves, read with NUT's own `upsc` (independent of the code under test)."""
        proc = subprocess.run(
            ["upsc", f"{UPS}@127.0.0.1:{self.port}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if proc.returncode != 0:
            raise UpscError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?")
        pairs = (line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
        return {k: v for k, v in pairs}

    def set_state(self, status: str, charge: float, runtime: float) -> None:
        """Change the UPS and wait until upsd serves exactly that state."""
        self.write_state(status, charge, runtime)
        want = {"ups.status": status, "battery.charge": f"{charge:g}"}
        want["battery.runtime"] = f"{runtime:g}"
        wait_until(
            lambda: all(self.read().get(k) == v for k, v in want.items()),
            timeout=15,
            what=f"upsd to report {want}",
        )

    def start_driver(self) -> None:
        self.driver = self._spawn([DRIVER, "-a", UPS, "-F"], "driver.log")

    def kill_driver(self) -> None:
        if self.driver is not None:
            self.driver.send_signal(signal.SIGKILL)
            self.driver.wait(timeout=10)
            self.driver = None

    def driver_gone(self) -> bool:
        try:
            self.read()
        except UpscError as exc:
            return "Driver not connected" in str(exc) or "Data stale" in str(exc)
        return False

    def stop(self) -> None:
        self.kill_driver()
        if self.upsd is not None:
            self.upsd.send_signal(signal.SIGKILL)
            self.upsd.wait(timeout=10)


def _configure(root: Path, port: int) -> None:
    etc, state = root / "etc", root / "state"
    etc.mkdir()
    state.mkdir()
    files = {
        "nut.conf": "MODE=netserver\n",
        "ups.conf": f"[{UPS}]\n  driver = dummy-ups\n  port = {etc / 'dummy.dev'}\n",
        "upsd.conf": f"LISTEN 127.0.0.1 {port}\n",
        "upsd.users": f"[admin]\n  password = {ADMIN_PASSWORD}\n  actions = SET\n",
        "dummy.dev": "ups.status: OL\nbattery.charge: 100\nbattery.runtime: 1800\n",
    }
    for name, text in files.items():
        (etc / name).write_text(text)
        _own(etc / name, 0o640)
    _own(root, 0o750)
    _own(etc, 0o750)
    _own(state, 0o770)


@pytest.fixture(scope="module")
def nut_server() -> Iterator[NutServer]:
    require_binary(DRIVER)
    require_binary(UPSD)
    require_binary("upsc")
    # Not under pytest's tmp dir: that is root-only, and upsd runs as user nut.
    root = Path(tempfile.mkdtemp(prefix="vaktpost-nut-"))
    server = NutServer(root, free_port())
    _configure(root, server.port)
    try:
        server.start_driver()
        server.upsd = server._spawn([UPSD, "-F"], "upsd.log")
        wait_until(
            lambda: server.read().get("ups.status") == "OL",
            timeout=20,
            what="upsd with the dummy driver to report OL",
        )
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def check_ups(port: int, *extra: str) -> tuple[int, str]:
    """monitoring-plugins' check_ups on the same UPS: the reference verdict."""
    plugin = require_binary("/usr/lib/nagios/plugins/check_ups")
    proc = subprocess.run(
        [plugin, "-H", "127.0.0.1", "-p", str(port), "-u", UPS, *extra],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return proc.returncode, proc.stdout.strip()
