"""state_dir on a small tmpfs, filled mid-escalation: loud while full, nothing lost after.

A real daemon escalates a failing check to a loopback webhook. Its state_dir is
a 4 MiB tmpfs that the test fills (dd until ENOSPC) while steps and repeats
come due, and frees after. While full: /readyz 503, vaktpost_store_up 0, and
the outbox still sends the row it already held (reads work while writes fail)
exactly once. After: every step and the repeat that came due is delivered,
late, never lost.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.state.sqlite import Store
from agent.state.sqlite_alerting import IncidentStore, OutboxUpdate
from alerting.model import EngineState, Notification, Outcome
from tests.alerting_fixtures import CI, TcpTarget, ThreadedReceiver
from tests.conftest import wait_until
from tests.faults.store_fixtures import AGENT, StoreDaemon, write_config

STEPS = (0.0, 6.0, 12.0)
REPEAT = 4.0
HOLD_UNTIL = 17.0  # seconds after the first step was queued: steps 1, 2 and repeats came due


def key(suffix: str) -> str:
    return f"{AGENT}/dept/app/1/{suffix}"


def _unavailable(why: str) -> None:
    if CI:
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        _unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(mount: Path) -> Path:
    """Writes a file until the filesystem is full (dd ends with ENOSPC: that is the point)."""
    filler = mount / "filler"
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "oflag=append", "conv=notrunc"],
        capture_output=True,
    )
    assert shutil.disk_usage(mount).free < 8192
    return filler


def pending(daemon: StoreDaemon) -> float:
    return daemon.metric("vaktpost_outbox_pending") or 0.0


def test_disk_full_mid_escalation_loses_nothing(small_fs: Path, tmp_path: Path) -> None:
    target = TcpTarget()
    with ThreadedReceiver() as receiver:
        receiver.receiver.status = 503  # the first step waits in the outbox, committed
        cfg = tmp_path / "cfg.yaml"
        port = write_config(cfg, small_fs, receiver.url, target.port, STEPS, REPEAT)
        daemon = StoreDaemon(cfg, port, tmp_path / "daemon.log")
        try:
            wait_until(daemon.listening, 30, "the daemon")
            wait_until(lambda: pending(daemon) >= 1, 20, "the first step queued")
            queued = time.monotonic()
            filler = fill(small_fs)
            filled = time.monotonic()
            wait_until(lambda: daemon.get("/readyz")[0] == 503, 15, "/readyz 503 while full")
            detected = time.monotonic()
            assert daemon.metric("vaktpost_store_up") == 0.0
            problems = json.loads(daemon.get("/readyz")[1])["problems"]
            assert any("state store cannot write" in p for p in problems), problems

            receiver.receiver.status = 200
            wait_until(
                lambda: key("0") in receiver.dedup_keys(),
                HOLD_UNTIL - 2,
                "the held row sent while the disk is full",
            )
            assert daemon.get("/readyz")[0] == 503, "still full: the send needed no write"
            while time.monotonic() < queued + HOLD_UNTIL:
                fill(small_fs)  # keep it full, whatever SQLite frees meanwhile
                time.sleep(0.5)  # the fault's duration, not a wait for state
            assert daemon.metric("vaktpost_store_up") == 0.0
            filler.unlink()
            freed = time.monotonic()

            wait_until(lambda: daemon.get("/readyz")[0] == 200, 15, "/readyz 200 once freed")
            ready = time.monotonic()
            assert daemon.metric("vaktpost_store_up") == 1.0
            want = {key("0"), key("1"), key("2"), key("2/repeat-1")}
            wait_until(
                lambda: want <= set(receiver.dedup_keys()),
                30,
                f"every step delivered after the disk was freed (want {sorted(want)})",
            )
        finally:
            code = daemon.stop()
    print(
        f"full->503 {detected - filled:.1f}s, freed->200 {ready - freed:.1f}s, "
        f"freed->all delivered {max(t for t, k in receiver.arrivals if k in want) - freed:.1f}s, "
        f"arrivals after the fill: {[k for t, k in receiver.arrivals if t > filled]}"
    )
    stderr = daemon.stderr()
    assert "Traceback" not in stderr
    assert code == 0
    keys = receiver.dedup_keys()
    assert keys.count(key("0")) == 1, "a send recorded only in memory is not sent again"
    late = {k for t, k in receiver.arrivals if t >= freed}
    assert {key("1"), key("2")} <= late, "nothing is sent that was not committed"
    for step in range(len(STEPS)):
        numbers = sorted(
            int(k.rsplit("-", 1)[1]) for k in set(keys) if k.startswith(key(f"{step}/repeat-"))
        )
        assert numbers == list(range(1, len(numbers) + 1)), f"step {step} repeats lost: {numbers}"


# -- the store side, in process, on the same kind of full filesystem -------------------------
def note(i: int) -> Notification:
    key = f"a/d/s/1/{i}"
    return Notification(key, "hook", 1, "firing", time.time(), {"dedup_key": key, "pad": "x" * 200})


async def test_a_failed_persist_leaves_nothing_and_the_store_reads_on(small_fs: Path) -> None:
    store = Store(small_fs)
    await store.open()
    store.settle_seconds = 0.0
    istore = IncidentStore(store)
    try:
        filler = fill(small_fs)
        outcome = Outcome(notifications=[note(i) for i in range(200)])
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await istore.persist(outcome, EngineState())
        assert not store.writable
        assert store.write_failures >= 1
        assert await istore.deliveries() == [], "reads work, and nothing is half-written"
        filler.unlink()
        await istore.persist(outcome, EngineState())  # no transaction was left open
        assert not store.writable, "up again only through a probe that finds room"
        store.probe_sync()
        assert store.writable
        assert len(await istore.deliveries()) == 200
    finally:
        await store.close()


async def test_outcomes_the_store_cannot_record_are_held_not_lost(small_fs: Path) -> None:
    store = Store(small_fs)
    await store.open()
    store.settle_seconds = 0.0
    istore = IncidentStore(store)
    try:
        await istore.persist(Outcome(notifications=[note(i) for i in range(3)]), EngineState())
        rows = await istore.head("hook", 10)
        filler = fill(small_fs)
        now = time.time()
        await istore.record(
            [
                OutboxUpdate(rows[0], "delivered", 1, now, done_at=now),
                OutboxUpdate(rows[1], "pending", 1, now + 60, "503"),
            ]
        )
        assert not store.writable
        assert [s for _, _, s in await istore.deliveries()] == ["pending"] * 3
        held = await istore.head("hook", 10)
        assert [r.id for r in held] == [rows[1].id, rows[2].id], "the sent row is not sent again"
        assert (held[0].attempts, held[0].next_attempt_at) == (1, now + 60), "its backoff kept"
        assert await istore.pending_counts() == {"hook": 2}
        filler.unlink()
        assert [r.id for r in await istore.head("hook", 10)] == [rows[1].id, rows[2].id]
        assert [s for _, _, s in await istore.deliveries()] == ["delivered", "pending", "pending"]
    finally:
        await store.close()
