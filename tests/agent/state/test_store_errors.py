"""Push and Alertmanager routes answer 503 for a failing store of either kind: the
PostgreSQL driver's errors count as store errors (they reached the client as 500)."""

from __future__ import annotations

import psycopg
import pytest

from agent.state.postgres_errors import PostgresStoreError, is_store_error
from agent.state.sqlite import StoreError
from tests.helpers import free_port


def test_a_refused_postgresql_connection_is_a_store_error() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"host=127.0.0.1 port={free_port()} connect_timeout=2 dbname=x user=x")
    assert is_store_error(caught.value)


def test_store_errors_and_bugs_are_told_apart() -> None:
    assert is_store_error(StoreError("disk full"))
    assert is_store_error(PostgresStoreError("fenced"))
    assert is_store_error(OSError(28, "No space left on device"))
    assert not is_store_error(ValueError("a bug"))
    assert not is_store_error(KeyError("x"))
