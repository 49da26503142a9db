"""restic check against real repositories: freshness, filters, check, restore test, secrets."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.results import ResultBook
from agent.runtime import Runtime
from agent.state.sqlite import Store
from checks import backup_tool
from checks.base import CheckContext, MemoryStateStore, Status
from checks.restic import ResticCheck, ResticConfig
from checks.tcp import TcpConfig
from tests.backup_fixtures import PASSWORD, STALE_HOURS, WRONG_PASSWORD, Repo
from tests.helpers import require_binary


def config(repo: Repo, **extra: Any) -> ResticConfig:
    base: dict[str, Any] = {
        "name": "backup",
        "type": "restic",
        "repository": str(repo.path),
        "password_file": str(repo.password_file),
    }
    return ResticConfig(**(base | extra))


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[list[str], dict[str, str]]]]:
    """Record argv and environment of every tool the checks start (and still start it)."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        calls.append((list(argv), dict(kwargs.get("env") or {})))
        return await real(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    yield calls


def restic_commands(calls: list[tuple[list[str], dict[str, str]]]) -> list[str]:
    return [argv[argv.index("restic") + 1] for argv, _ in calls if "restic" in argv]


async def test_fresh_snapshot_checked_and_restore_tested(
    restic_repo: Repo, ctx: CheckContext, spawned: list[tuple[list[str], dict[str, str]]]
) -> None:
    result = await ResticCheck(config(restic_repo, host="h-fresh"), ctx).run()
    assert result.status is Status.OK, result.message
    assert result.facts["age_seconds"] < 300
    assert abs(result.facts["last_success_timestamp"] - time.time()) < 300
    assert result.facts["verify_ok"] == 1.0 and result.facts["restore_ok"] == 1.0
    assert result.facts["verified_at"] == result.facts["verify_at"]
    assert "repository check passed" in result.message
    assert "restore test passed" in result.message
    assert restic_commands(spawned) == ["snapshots", "check", "ls", "restore"]
    # Secrets and the repository travel in the environment, never in argv.
    for argv, env in spawned:
        assert not any(PASSWORD in a or str(restic_repo.path) in a for a in argv)
        assert argv[:2] == ["ionice", "-c"] and "nice" in argv
        assert env["RESTIC_PASSWORD_FILE"] == str(restic_repo.password_file)
        assert env["RESTIC_REPOSITORY"] == str(restic_repo.path)
    restored = list((ctx.state_dir / "restore-tests").iterdir())
    assert restored == [], "the restore-test directory must be cleaned up"


async def test_stale_snapshot_is_critical(restic_repo: Repo, ctx: CheckContext) -> None:
    cfg = config(restic_repo, host="h-stale", check_every=None, restore_test_every=None)
    result = await ResticCheck(cfg, ctx).run()
    assert result.status is Status.CRITICAL
    assert f"newest snapshot {STALE_HOURS} h old (max_age 26 h)" in result.message
    assert abs(result.facts["age_seconds"] - STALE_HOURS * 3600) < 600


async def test_filters_pick_snapshots(restic_repo: Repo, ctx: CheckContext) -> None:
    off = {"check_every": None, "restore_test_every": None}
    tagged = await ResticCheck(config(restic_repo, tags=["daily"], **off), ctx).run()
    assert tagged.status is Status.OK and tagged.facts["age_seconds"] < 300
    # Without filters the newest of all snapshots counts: the fresh one.
    assert (await ResticCheck(config(restic_repo, **off), ctx).run()).status is Status.OK
    none = await ResticCheck(config(restic_repo, host="nobody", tags=["x"], **off), ctx).run()
    assert none.status is Status.CRITICAL
    assert none.message.endswith("matching host=nobody tags=x")
    assert none.message.startswith("no snapshot in repository")


async def test_wrong_password_is_unknown_without_the_secret(
    restic_repo: Repo, ctx: CheckContext, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG_PASSWORD)
    result = await ResticCheck(config(restic_repo, password_file=str(wrong)), ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message == "cannot open repository: wrong password or no key found"
    assert WRONG_PASSWORD not in result.message and PASSWORD not in result.message
    assert await ctx.store.get_state("backup", "verify") is None  # no verdict recorded


async def test_missing_repository_is_critical(ctx: CheckContext, tmp_path: Path) -> None:
    require_binary("restic")
    pw = tmp_path / "pw"
    pw.write_text("x")
    cfg = ResticConfig(
        name="backup", type="restic", repository=str(tmp_path / "nope"), password_file=str(pw)
    )
    result = await ResticCheck(cfg, ctx).run()
    assert result.status is Status.CRITICAL
    assert result.message == "repository not found (no restic repository there)"


async def test_missing_password_file_is_unknown(restic_repo: Repo, ctx: CheckContext) -> None:
    result = await ResticCheck(config(restic_repo, password_file="/nonexistent/pw"), ctx).run()
    assert result.status is Status.UNKNOWN
    assert result.message.startswith("no usable password:")


async def test_corrupted_pack_fails_check_and_restore(
    restic_corrupt: Repo, ctx: CheckContext
) -> None:
    result = await ResticCheck(config(restic_corrupt, read_data_subset="100%"), ctx).run()
    assert result.status is Status.CRITICAL
    assert "repository check failed: Pack ID does not match" in result.message
    assert "restore test failed: restoring /" in result.message
    assert "big.bin failed" in result.message
    assert result.facts["verify_ok"] == 0.0 and result.facts["restore_ok"] == 0.0
    assert "verified_at" not in result.facts and "restore_tested_at" not in result.facts


async def test_structure_check_passes_but_restore_test_catches_corruption(
    restic_corrupt: Repo, ctx: CheckContext
) -> None:
    # Without read_data_subset `restic check` does not read pack contents...
    result = await ResticCheck(config(restic_corrupt), ctx).run()
    assert result.facts["verify_ok"] == 1.0
    # ... the restore test does, which is why it exists.
    assert result.status is Status.CRITICAL
    assert result.message.startswith("restore test failed:")


async def test_outcomes_survive_restart_and_rerun_when_due(
    restic_repo: Repo, tmp_path: Path, spawned: list[tuple[list[str], dict[str, str]]]
) -> None:
    cfg = config(restic_repo, host="h-fresh")
    now = [time.time()]

    async def run_with_fresh_store() -> dict[str, float]:
        store = Store(tmp_path / "state")
        await store.open()
        try:
            ctx = CheckContext(tmp_path / "state", "a", clock=lambda: now[0], store=store)
            result = await ResticCheck(cfg, ctx).run()
            return dict(result.facts)
        finally:
            await store.close()

    first = await run_with_fresh_store()
    assert restic_commands(spawned) == ["snapshots", "check", "ls", "restore"]
    spawned.clear()
    second = await run_with_fresh_store()  # "after a restart": a new store on the same file
    assert restic_commands(spawned) == ["snapshots"]
    assert second["verified_at"] == first["verified_at"]
    assert second["restore_tested_at"] == first["restore_tested_at"]
    spawned.clear()
    now[0] += 2 * 86400  # check_every (1d) passed, restore_test_every (7d) not yet
    third = await run_with_fresh_store()
    assert restic_commands(spawned) == ["snapshots", "check"]
    assert third["verified_at"] == now[0]
    assert third["restore_tested_at"] == first["restore_tested_at"]


async def test_one_tool_at_a_time_per_repository(restic_repo: Repo, tmp_path: Path) -> None:
    # Two concurrent `restic check` on one repository: the second would find it
    # exclusively locked. The per-repository lock serialises them, so both pass.
    checks = [
        ResticCheck(
            config(restic_repo, name=f"b{i}", host="h-fresh", restore_test_every=None),
            CheckContext(tmp_path / f"s{i}", "a", store=MemoryStateStore()),
        )
        for i in range(2)
    ]
    results = await asyncio.gather(*(c.run() for c in checks))
    for result in results:
        assert result.status is Status.OK, result.message
        assert result.facts["verify_ok"] == 1.0
    assert backup_tool.repository_lock(str(restic_repo.path)) is backup_tool.repository_lock(
        str(restic_repo.path) + "/"
    )


async def _stalling_rest_server() -> tuple[asyncio.Server, int]:
    """A 'REST repository' that accepts and never answers: a restic that hangs."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until restic is killed and the socket closes
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def restic_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "restic" and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_event_loop_stays_responsive_while_restic_hangs(tmp_path: Path) -> None:
    require_binary("restic")
    server, rest_port = await _stalling_rest_server()
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    tcp_port = listener.sockets[0].getsockname()[1]
    pw = tmp_path / "pw"
    pw.write_text("secret")
    restic_cfg = ResticConfig(
        name="slow-restic",
        type="restic",
        repository=f"rest:http://127.0.0.1:{rest_port}/",
        password_file=str(pw),
        interval=3600,
        timeout=3,
    )
    tcp_cfg = TcpConfig(name="tcp", type="tcp", host="127.0.0.1", port=tcp_port, interval=0.2)
    book = ResultBook()
    runtime = Runtime(book, CheckContext(tmp_path / "state", "a"), 10)
    runtime.apply((restic_cfg, tcp_cfg))
    tcp_finish_times: list[float] = []
    book.listeners.append(
        lambda s: tcp_finish_times.append(time.monotonic()) if s.config.name == "tcp" else None
    )
    try:
        started = time.monotonic()
        restic_task = asyncio.create_task(runtime.runner.run(runtime.checks["slow-restic"]))
        runtime.start()
        result = await restic_task
        elapsed = time.monotonic() - started
    finally:
        await runtime.stop(grace=1.0)
        server.close()
        listener.close()
    assert result.status is Status.CRITICAL and result.message == "timed out after 3s"
    assert 2.9 < elapsed < 4.5
    # The tcp check kept its 0.2 s schedule the whole time: no gap of a second or more.
    during = [t for t in tcp_finish_times if t <= started + elapsed]
    assert len(during) >= 8, f"tcp ran {len(during)} times in {elapsed:.1f}s"
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) < 0.6
    assert restic_children() == [], "the timed-out restic (and its group) must be killed"
