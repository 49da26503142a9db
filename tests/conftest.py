"""pytest's hooks for the whole suite. Helpers live in tests/helpers.py; the names
below are re-exported for tests written when they lived here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerting_fixtures import TcpTarget
from tests.helpers import ROOT, VAKTPOST, free_port, require_binary, wait_until

__all__ = ["ROOT", "VAKTPOST", "free_port", "require_binary", "wait_until"]

# A ResourceWarning fails every test (pyproject.toml), except in these files, whose
# fixtures still leak a socket; remove an entry once its file closes what it opens.
LEAKS_A_SOCKET = {
    "test_prometheus_check.py": "the prom fixture never closes its ThreadingHTTPServer",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in LEAKS_A_SOCKET:
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))


@pytest.fixture(autouse=True)
def _release_tcp_targets() -> Iterator[None]:
    """Close the TcpTargets a test made (its own fixtures' too) when it ends."""
    before = len(TcpTarget.created)
    yield
    for target in TcpTarget.created[before:]:
        target.release()
    del TcpTarget.created[before:]


@pytest.fixture(autouse=True, scope="session")
def _release_longer_lived_tcp_targets() -> Iterator[None]:
    """Those of module and session fixtures, at the end."""
    yield
    for target in TcpTarget.created:
        target.release()
    TcpTarget.created.clear()
