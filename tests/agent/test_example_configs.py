"""The shipped configs validate through the real CLI, and config/default.yaml never drifts."""

from __future__ import annotations

import subprocess

import pytest

from agent.configload import load_config
from alerting.channels.registry import CHANNEL_CONFIGS
from checks.registry import CHECK_TYPES
from tests.helpers import ROOT, VAKTPOST

EXAMPLES = ["config/default.yaml", "config/example-municipality.yaml"]


@pytest.mark.parametrize("path", EXAMPLES)
def test_example_config_validates_through_the_cli(path: str) -> None:
    done = subprocess.run(
        [*VAKTPOST, "validate", "-c", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: ok (")


def test_repo_default_config_is_byte_identical_to_the_embedded_one() -> None:
    embedded = (ROOT / "agent" / "default.yaml").read_bytes()
    shipped = (ROOT / "config" / "default.yaml").read_bytes()
    assert shipped == embedded, "config/default.yaml drifted from agent/default.yaml: copy it"


def test_municipality_example_covers_what_it_is_meant_to_show() -> None:
    """The example is documentation: it must keep showing every feature it promises."""
    config = load_config(ROOT / "config" / "example-municipality.yaml", env={})
    assert config.include == ("departments/*.yaml",)
    assert {d.id for d in config.departments} == {"it", "social-services", "schools", "water"}
    assert len(config.checks) >= 30
    # Every registered type: a new check or channel type has to show up in the example.
    assert sorted({c.type for c in config.checks}) == sorted(CHECK_TYPES)
    assert sorted({c.type for c in config.channels.values()}) == sorted(CHANNEL_CONFIGS)
    assert any(c.depends_on == ("core-switch",) for c in config.checks)
    assert any(c.depends_on == ("uplink",) for c in config.checks)
    afters = {str(step.after) for d in config.departments for step in d.escalation}
    assert {"rto", "mtpd", "50% rto", "0s"} <= afters
    assert all(d.repeat and d.ack_expires for d in config.departments)
    systems = [s for d in config.departments for s in d.systems]
    assert all(s.rto and s.mtpd and s.fallback.strip() for s in systems)
    assert sum(len(s.backups) for s in systems) >= 4
    assert config.maintenance
    assert config.agent.language == "sv"
    assert config.agent.timezone == "Europe/Stockholm"
