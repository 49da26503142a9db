"""agent.store / store_password_file / fleet.lease: accepted, refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config import AgentConfig
from agent.state.fleet import build_store
from agent.state.postgres import PostgresStore
from agent.state.postgres_errors import PostgresStoreError
from agent.state.sqlite import Store


def test_without_store_the_agent_keeps_sqlite(tmp_path: Path) -> None:
    assert isinstance(build_store(AgentConfig(state_dir=str(tmp_path))), Store)


def test_a_postgresql_url_selects_the_shared_store_and_reads_the_password_file(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "pg.pass"
    secret.write_text("s3cret\n")
    agent = AgentConfig(
        name="srv-a",
        store="postgresql://vaktpost@db1.kommun.local/vaktpost?sslmode=verify-full",
        store_password_file=str(secret),
    )
    store = build_store(agent)
    assert isinstance(store, PostgresStore)
    assert store.agent == "srv-a" and agent.fleet.lease == 15.0
    assert "sslmode=verify-full" in store.where and "s3cret" not in store.where


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "use postgresql://"),
        ("postgresql://u:hunter2@db/x", "must not carry a password"),
        ("postgresql://db/x?password=hunter2", "must not carry a password"),
    ],
)
def test_bad_store_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AgentConfig(store=url)


def test_a_missing_password_file_is_one_line(tmp_path: Path) -> None:
    agent = AgentConfig(store="postgresql://v@db/x", store_password_file=str(tmp_path / "no"))
    with pytest.raises(PostgresStoreError, match=r"cannot read store_password_file .*no") as e:
        build_store(agent)
    assert "\n" not in str(e.value)


def test_a_lease_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValidationError):
        AgentConfig(fleet={"lease": "1s"})


def test_the_daemon_refuses_to_start_without_its_password_file(tmp_path: Path) -> None:
    import subprocess

    from tests.helpers import free_port, vaktpost_cmd

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"agent: {{listen: '127.0.0.1:{free_port()}', state_dir: '{tmp_path / 'state'}',"
        f" store: 'postgresql://v@127.0.0.1:{free_port()}/x',"
        f" store_password_file: '{tmp_path / 'missing'}'}}\n"
    )
    done = subprocess.run(
        vaktpost_cmd("run", "-c", str(cfg)), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "cannot read store_password_file" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
