"""A PostgreSQL of one test's own, to stop and start again: the session's server
(tests/agent/state/pg_fixtures.py) is shared by every store test, so an outage there
would fail tests that did not ask for one."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

from tests.agent.state.pg_fixtures import PgServer, start_postgres


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.rmtree(server.dir)


def crash(server: PgServer) -> None:
    """`pg_ctl stop -m immediate`: every backend ends at once, no checkpoint (a power cut
    of the database host, as far as its clients can tell)."""
    server.stop("immediate")
    assert not server.ready(), "postgresql still answers after an immediate stop"


def restart(server: PgServer) -> None:
    """Start again on the same data directory and port: crash recovery, then ready."""
    server.start()
