"""The PostgreSQL store's errors, apart from the store itself.

The daemon and the alerting service catch these on every path, also on the
SQLite store (the default); importing agent/state/postgres.py for them would
load psycopg and its pool, ~9 MiB of RSS that a lone agent never uses.
"""

from __future__ import annotations

import sys


class PostgresStoreError(Exception):
    pass


class FencedError(PostgresStoreError):
    """A write under an engine-lease token that is no longer the current one."""


def is_store_error(exc: BaseException) -> bool:
    """An error of a state store (SQLite's, PostgreSQL's or its driver's, or the OS's):
    the caller answers 503 and keeps running. psycopg is consulted only when loaded:
    an exception cannot come from a driver nobody imported."""
    from agent.state.sqlite import StoreError

    if isinstance(exc, StoreError | OSError | PostgresStoreError):
        return True
    psycopg = sys.modules.get("psycopg")
    pool = sys.modules.get("psycopg_pool")
    return (psycopg is not None and isinstance(exc, psycopg.Error)) or (
        pool is not None and isinstance(exc, pool.PoolTimeout)
    )
