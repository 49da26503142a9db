"""Overload: 300 checks hanging on a silent server beside a healthy one (issue 9, seen 7).

With one first-come queue of `max_concurrency` slots a healthy 1 s check waited
behind every hanging probe. Fair admission keeps its gaps within twice its
interval, and `vaktpost_checks_waiting` shows the queue.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.alerting_fixtures import (
    TcpTarget,
    daemon,
    free_port,
    http_get,
    metric_value,
    wait_for,
)

HANGING = 300


def test_a_healthy_check_keeps_its_pace_beside_300_hanging_ones(tmp_path: Path) -> None:
    silent, healthy = TcpTarget(), TcpTarget()
    silent.open()  # connects complete in the backlog; nothing is ever sent
    healthy.open()
    port = free_port()
    hanging = "\n".join(
        f"  - {{name: hang{i}, type: tcp, host: 127.0.0.1, port: {silent.port},"
        ' expect: "never", interval: 1s, timeout: 2s}'
        for i in range(HANGING)
    )
    cfg = tmp_path / "overload.yaml"
    cfg.write_text(
        f"""
agent:
  listen: 127.0.0.1:{port}
  state_dir: {tmp_path / "state"}
  max_concurrency: 50
checks:
  - {{name: healthy, type: tcp, host: 127.0.0.1, port: {healthy.port}, interval: 1s,
      timeout: 3s}}
{hanging}
"""
    )
    base = f"http://127.0.0.1:{port}/metrics"

    def metrics() -> str:
        return http_get(base)[1]

    def runs(text: str) -> float:
        return sum(
            metric_value(text, f'vaktpost_check_runs_total{{check="healthy",status="{s}"}}') or 0
            for s in ("ok", "warning", "critical", "unknown", "unreachable")
        )

    with daemon(cfg, tmp_path / "log"):
        # Overload reached, past the first round: at start nothing tells a hanging
        # check from a healthy one, so the first round is first come, first served
        # (docs/reliability.md); from then on hanging checks share half the slots.
        def overloaded() -> bool:
            text = metrics()
            return (metric_value(text, "vaktpost_checks_waiting") or 0) > 100 and runs(text) > 0

        wait_for(overloaded, 60, "the queue to fill, after a first healthy run")
        start_runs = runs(metrics())
        start = time.monotonic()
        wait_for(lambda: runs(metrics()) >= start_runs + 5, 30, "five more healthy runs")
        elapsed = time.monotonic() - start
        print(f"5 healthy runs in {elapsed:.2f}s")  # the figure in docs/reliability.md
        assert elapsed <= 5 * 2 * 1.0, f"5 runs of a 1 s check took {elapsed:.1f}s"
        text = metrics()
        assert (metric_value(text, "vaktpost_checks_waiting") or 0) > 0
        assert (metric_value(text, "vaktpost_check_admission_wait_seconds_count") or 0) > 0
