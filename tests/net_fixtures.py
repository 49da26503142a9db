"""Shared fixtures of the network probe tests. Import them into a test module:

from tests.net_fixtures import pki, targets  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import CheckConfig, CheckContext, CheckResult
from checks.registry import build
from tests.net_certs import Pki, make_pki
from tests.net_servers import Targets, running_servers


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def targets(pki: Pki) -> Iterator[Targets]:
    with running_servers(pki) as t:
        yield t


def context(tmp: Path | None = None) -> CheckContext:
    return CheckContext(state_dir=tmp or Path("/nonexistent"), agent_name="test")


def config(model: type[CheckConfig], **keys: object) -> CheckConfig:
    keys.setdefault("name", "probe")
    return model.model_validate(keys)


async def probe(model: type[CheckConfig], **keys: object) -> CheckResult:
    """Builds the check from config keys (as YAML would give them) and runs it once."""
    check = build(config(model, **keys), context())
    try:
        return await check.run()
    finally:
        close = getattr(check, "aclose", None)
        if close is not None:
            await close()
