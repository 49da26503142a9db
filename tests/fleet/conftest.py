"""Fleet tests: real PostgreSQL from tests/state/pg_fixtures.py."""

from tests.state.pg_fixtures import pg_server

__all__ = ["pg_server"]
