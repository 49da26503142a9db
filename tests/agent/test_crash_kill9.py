"""kill -9 the daemon at 20 random moments across an escalation, restarting it each time.

Every step must be delivered; a dedup key may arrive twice only when a kill fell
between its send and the commit that records it (then the first copy arrived
just before that kill, and this test says so).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.alerting_fixtures import ThreadedReceiver, ladder_config
from tests.helpers import ROOT, free_port, vaktpost_cmd, wait_until

STEPS = 10
SPACING = 3.0  # seconds between steps: the escalation spans ~27 s
KILLS = 20


def test_kill9_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with ThreadedReceiver() as receiver:
        kills = run_with_kills(tmp_path, receiver)
    arrivals = list(receiver.arrivals)
    counts = Counter(k for _, k in arrivals)
    want = {f"crash/dept/app/1/{i}" for i in range(STEPS)}
    assert set(counts) == want, "one incident (id 1) survived every restart"
    for key, count in counts.items():
        if count == 1:
            continue
        assert count == 2, f"{key} delivered {count} times"
        first = next(t for t, k in arrivals if k == key)
        kill = min(k for k in kills if k >= first)
        assert kill - first < 0.5, f"{key} repeated although no kill followed its send"
        print(
            f"{key}: delivered twice; the kill {kill - first:.3f}s after its send fell "
            "between send and commit (allowed: at-least-once)"
        )
    # The escalation clock survived: no step arrived before its time.
    start = next(t for t, k in arrivals if k.endswith("/1/0"))
    for i in range(1, STEPS):
        at = next(t for t, k in arrivals if k.endswith(f"/1/{i}"))
        assert at - start >= i * SPACING - 0.6, f"step {i} came early"


def run_with_kills(tmp_path: Path, receiver: ThreadedReceiver) -> list[float]:
    cfg = tmp_path / "cfg.yaml"
    state = tmp_path / "state"
    steps = [i * SPACING for i in range(STEPS)]
    cfg.write_text(
        ladder_config(
            name="crash",
            port=free_port(),
            state=state,
            hook=receiver.url,
            closed=free_port(),
            steps=steps,
        )
    )
    rng = random.Random(5)
    kills: list[float] = []
    cmd = vaktpost_cmd("run", "-c", str(cfg))
    with (tmp_path / "daemon.log").open("ab") as log:
        for _ in range(KILLS):
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)
            # Hold for a random moment: during startup, between ticks, mid-send.
            time.sleep(rng.uniform(0.3, 1.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append(time.monotonic())
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)
        try:
            want = {f"crash/dept/app/1/{i}" for i in range(STEPS)}
            wait_until(lambda: want <= set(receiver.dedup_keys()), 40, "every step delivered")
            proc.terminate()
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return kills
