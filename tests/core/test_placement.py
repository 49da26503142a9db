"""Rendezvous hashing and run_on globs (core/placement.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.configload import ConfigError, read_config
from core.placement import may_run, owner


def test_empty_run_on_allows_any_agent_and_globs_match_names() -> None:
    assert may_run((), "srv-app01")
    assert may_run(("probe-*",), "probe-2")
    assert not may_run(("probe-*",), "srv-app01")
    assert not may_run(("srv-app01",), "srv-app011")


def test_each_key_has_one_owner_and_only_a_lapsed_agents_keys_move() -> None:
    agents = ["a", "b", "c"]
    keys = [f"check-{i}" for i in range(3000)]
    before = {k: owner(k, (), agents) for k in keys}
    counts = {a: sum(1 for v in before.values() if v == a) for a in agents}
    assert all(800 < n < 1200 for n in counts.values()), counts  # an even split
    after = {k: owner(k, (), ["a", "c"]) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "b" for k in moved)
    assert all(after[k] in ("a", "c") for k in keys)


def test_owner_is_independent_of_the_order_members_are_listed_in() -> None:
    assert owner("x", (), ["a", "b", "c"]) == owner("x", (), ["c", "a", "b"])


def test_pinned_key_has_no_owner_while_its_agent_is_gone() -> None:
    assert owner("app01-disk", ("srv-app01",), ["srv-app01", "probe-1"]) == "srv-app01"
    assert owner("app01-disk", ("srv-app01",), ["probe-1"]) is None


def test_an_empty_run_on_glob_of_a_check_is_a_one_line_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "checks:\n  - {name: a, type: tcp, host: 127.0.0.1, port: 9, run_on: ['srv-a', '']}\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_config(str(cfg))
    text = str(caught.value)
    assert "run_on" in text and "an empty glob matches no agent" in text, text
