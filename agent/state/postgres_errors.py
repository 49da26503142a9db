"""The PostgreSQL store's errors, apart from the store itself.

The daemon and the alerting service catch these on every path, also on the
SQLite store (the default); importing agent/state/postgres.py for them would
load psycopg and its pool, ~9 MiB of RSS that a lone agent never uses.
"""

from __future__ import annotations


class PostgresStoreError(Exception):
    pass


class FencedError(PostgresStoreError):
    """A write under an engine-lease token that is no longer the current one."""
