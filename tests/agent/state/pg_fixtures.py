"""A real PostgreSQL 15 (Debian's `postgresql`) for the store tests: one server per
test session in a temporary directory on a free loopback port, one fresh database
per test. Missing binaries skip on a developer machine and fail under CI=true."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, skip_or_fail, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "vaktpost"


@dataclass
class PgServer:
    dir: Path
    port: int
    run_as: list[str]  # runuser prefix: the server refuses to run as root
    _names = itertools.count(1)

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}?connect_timeout=5"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            [
                *(str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", dbname, "-c", sql),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip()

    def new_database(self) -> str:
        """A fresh, empty database's DSN (each test its own: no state leaks between tests)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            timeout=60,
            check=check,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-l", str(self.dir / "log"), "-w", "-o", options, "start")
        wait_until(self.ready, timeout=30, what="postgresql accepting connections")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "stop", check=False)

    def ready(self) -> bool:
        return (
            subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                timeout=10,
            ).returncode
            == 0
        )


def start_postgres() -> PgServer:
    if not (PG_BIN / "initdb").exists():
        skip_or_fail(f"PostgreSQL 15 is not installed ({PG_BIN}; Debian package postgresql)")
    # Under /tmp itself: pytest's tmp dirs are 0700 root's, where `postgres` cannot go.
    d = Path(tempfile.mkdtemp(prefix="vaktpost-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            skip_or_fail("running as root and there is no `postgres` user to run the server")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = PgServer(d, free_port(), run_as)
    subprocess.run(
        [
            *(*run_as, str(PG_BIN / "initdb"), "-D", str(server.data), "-A", "trust"),
            *("-U", USER, "--no-sync", "-E", "UTF8", "--locale=C"),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.rmtree(server.dir)
