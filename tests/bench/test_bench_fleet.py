"""bench/fleet.py --quick on a real PostgreSQL, so the benchmark cannot rot: it must
start its cluster and four agents, measure both sides, and see a killed engine holder's
next step delivered."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.state.pg_fixtures import PG_BIN
from tests.bench.bench_run import run_bench
from tests.helpers import skip_or_fail

FLEET = ("srv-a", "srv-b", "srv-c")
QUICK = ("--quick", "--checks", "12")


def test_quick_fleet_bench_measures_both_sides_and_a_failover(tmp_path: Path) -> None:
    if not (PG_BIN / "initdb").exists():
        skip_or_fail(f"PostgreSQL 15 is not installed ({PG_BIN}; Debian package postgresql)")
    out = tmp_path / "fleet.json"
    run = run_bench("fleet.py", *QUICK, "--json", str(out))
    assert "CPU per result, agents + database" in run.stdout
    figures = json.loads(out.read_text())
    window = figures["window"]
    # Check assignment split the 12 checks + the switch over the three agents, each
    # agent probed its share, and the reference probed every check itself.
    assert sum(window["assigned"][n] for n in FLEET) == 13
    assert all(window["runs"][n] > 0 for n in FLEET)
    assert window["solo_results"] > 0 and window["fleet_results"] > 0
    # The store saw the fleet's results and the database's CPU was counted.
    assert window["writes"] > 0
    assert window["cpu"]["postgres"] > 0
    assert figures["ratio"] > 0
    (kill,) = figures["failover"]["kills"]
    assert kill["killed"] in FLEET and kill["new_holder"] in FLEET
    assert kill["new_holder"] != kill["killed"]
    # Delivered after the takeover, not before the kill; a generous bound on a
    # shared machine (the bench itself reports the lease + 2 s target).
    assert not kill["sent_before_kill"]
    assert 0 < kill["kill_to_delivered_s"] < figures["lease_s"] + 10
    assert abs(figures["failover"]["next_step_late_s"]) < 5
