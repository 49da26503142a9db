"""`vaktpost validate`: files the agent needs at start, plan warnings, and the README's tour.

Everything runs the real CLI in a subprocess; the agent started here listens on
127.0.0.1 and contacts nothing else.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent.configload import load_config_text
from tests.helpers import ROOT, VAKTPOST, free_port, wait_until

EXAMPLE = "config/example-municipality.yaml"


def fresh_env(**extra: str) -> dict[str, str]:
    """The environment of a machine that has never heard of vaktpost."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAKTPOST_")}
    return {**env, **extra}


def validate(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VAKTPOST, "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=fresh_env(),
        timeout=60,
    )


FILES = """agent:
  web:
    tls_cert_file: {d}/missing.crt
    tls_key_file: {d}/present.key
channels:
  soc: {{type: webhook, url: "https://soc.example.invalid/hook", hmac_secret_file: {d}/gone}}
checks:
  - name: alarm-api
    type: http
    url: https://larm.example.invalid/
    basic_auth: {{username: u, password_file: hunter2-pasted-secret}}
    tls: {{ca_file: {d}}}
  - name: journal-dump
    type: backup_files
    path: {d}/dumps/*.sql
    checksum_file: {d}/dumps/SHA256SUMS
"""


def test_missing_files_are_errors_naming_the_key_never_the_value(tmp_path: Path) -> None:
    (tmp_path / "present.key").write_text("key\n")
    path = tmp_path / "files.yaml"
    path.write_text(FILES.format(d=tmp_path))
    done = validate(path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{path}:3: agent.web.tls_cert_file: file not found",
        f"{path}:6: channels.soc.hmac_secret_file: file not found",
        f"{path}:11: checks[0].basic_auth.password_file: file not found",
        f"{path}:12: checks[0].tls.ca_file: not a file",
    ]
    # A password pasted where its file belongs is never printed; checksum_file is
    # written by the backup job and may come later, so it is not required.
    assert "hunter2" not in done.stderr + done.stdout
    assert "checksum_file" not in done.stderr


def test_files_present_validate(tmp_path: Path) -> None:
    for name in ("missing.crt", "present.key", "gone"):
        (tmp_path / name).write_text("x\n")
    text = FILES.format(d=tmp_path).replace("hunter2-pasted-secret", str(tmp_path / "gone"))
    text = text.replace(f"ca_file: {tmp_path}", f"ca_file: {tmp_path / 'gone'}")
    path = tmp_path / "files.yaml"
    path.write_text(text)
    done = validate(path)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can read (pytest's tmp_path is private to us)."""
    with tempfile.TemporaryDirectory(prefix="vaktpost-validate-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def test_unreadable_file_as_the_user_validate_runs_as(shared_dir: Path) -> None:
    secret = shared_dir / "restic.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    path = shared_dir / "c.yaml"
    path.write_text(
        "checks:\n  - name: treserva-restic\n    type: restic\n"
        f"    repository: {shared_dir}/repo\n    password_file: {secret}\n"
    )
    path.chmod(0o644)
    if os.geteuid() == 0:
        # root reads everything: ask as nobody, as systemd's ExecStartPre runs as the agent user.
        if not Path("/usr/bin/setpriv").exists():
            pytest.skip("needs setpriv to drop root")
        os.chown(secret, 0, 0)
        prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        secret.chmod(0o000)
        prefix = []
    done = subprocess.run(
        [*prefix, *VAKTPOST, "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=fresh_env(PYTHONDONTWRITEBYTECODE="1"),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == f"{path}:5: checks[0].password_file: not readable"


PLAN = """channels:
  ops: {type: log}
departments:
  - id: soc
    systems:
      - {id: treserva, rto: 2h, mtpd: 8h}
      - {id: journal, rto: 1h, mtpd: 4h}
    escalation:
      - {after: 0m, notify: [ops]}
      - {after: mtpd, notify: [ops]}
      - {after: 150% mtpd, notify: [ops]}
      - {after: 400% rto, notify: [ops]}
      - {after: 5h, notify: [ops]}
"""


def test_steps_past_the_mtpd_are_warnings_and_validate_still_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    done = validate(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: ok (")
    prefix = "warning: the step comes past the mtpd, when the outage is already intolerable"
    # `mtpd` and 400% rto land on the mtpd itself, not past it: no warning.
    assert done.stderr.splitlines() == [
        f"{path}:11: departments[0].escalation[2].after: {prefix}: "
        "systems 'treserva' at 12h (mtpd 8h), 'journal' at 6h (mtpd 4h)",
        f"{path}:13: departments[0].escalation[4].after: {prefix}: "
        "system 'journal' at 5h (mtpd 4h)",
    ]


def test_warnings_reach_the_log_when_the_daemon_loads(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vaktpost.config"):
        load_config_text(PLAN, "plan.yaml")
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == [
        "departments[0].escalation[2].after",
        "departments[0].escalation[4].after",
    ]


def test_the_example_validates_on_a_fresh_machine() -> None:
    done = validate(EXAMPLE)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"{EXAMPLE}: ok (51 checks")


def test_the_examples_agent_section_starts_with_run(tmp_path: Path) -> None:
    """The tour's `run`, on the example's own agent and web section.

    The whole example would probe the public resolvers of its uplink check
    (9.9.9.9, 1.1.1.1) and its fictional hosts, so this keeps the agent section
    (users, no TLS files, listen and state_dir through the example's own
    variables) and drops what would reach out: the heartbeat URL, the peer.
    """
    example = yaml.safe_load((ROOT / EXAMPLE).read_text(encoding="utf-8"))
    agent = example["agent"]
    agent.pop("heartbeat")
    agent.pop("peers")
    config = {
        "agent": agent,
        "channels": {"it-jour": {"type": "log", "default": True}, "it-chef": {"type": "log"}},
    }
    path = tmp_path / "tour.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    env = fresh_env(VAKTPOST_LISTEN=f"127.0.0.1:{port}", VAKTPOST_STATE_DIR=str(tmp_path / "s"))
    assert validate(path).returncode == 0
    proc = subprocess.Popen(
        [*VAKTPOST, "run", "-c", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy_or_gone() -> bool:
            if proc.poll() is not None:
                return True
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return bool(r.status == 200)

        wait_until(healthy_or_gone, timeout=30, what="/healthz of the tour's agent")
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"run exited {proc.returncode}: {out}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    assert (tmp_path / "s").is_dir(), "state_dir comes from VAKTPOST_STATE_DIR"
