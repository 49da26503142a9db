"""Fleet tests: real PostgreSQL from tests/agent/state/pg_fixtures.py."""

from tests.agent.state.pg_fixtures import pg_server

__all__ = ["pg_server"]
