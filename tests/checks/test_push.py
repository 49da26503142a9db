"""push checks: the verdict on an injected clock, and a real daemon's endpoint (issue 12).

The daemon test drives a department system down through a failed ping and up
again through a success, with a webhook channel to a loopback receiver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from pydantic import ValidationError

from agent import readiness
from checks.base import CheckContext, MemoryStateStore, Status
from checks.push import PushCheck, PushConfig, PushState, apply_ping, clean_message, evaluate
from tests.alerting_fixtures import (
    ThreadedReceiver,
    config_from,
    free_port,
    http_get,
    wait_for,
)
from tests.signals_fixtures import checks_of, send, signal_daemon, status_of

TOKEN = "push-token-0123456789abcdef"
FILE_TOKEN = "file-token-fedcba9876543210"
H = 3600.0
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()  # a Monday, 13:00 in Stockholm


def cfg(**keys: Any) -> PushConfig:
    return PushConfig.model_validate({"name": "job", "type": "push", "token": TOKEN, **keys})


def judge(config: PushConfig, state: PushState, at: float) -> tuple[Status, str]:
    result = evaluate(config, state, T0, at, "Europe/Stockholm")
    return result.status, result.message


# -- the verdict, on an injected clock ----------------------------------------------


def test_missing_ping_is_late_then_critical_after_period_plus_grace() -> None:
    config = cfg(period="24h", grace="2h")
    state = apply_ping(PushState(), "success", T0, "backup done")
    assert judge(config, state, T0 + 23 * H)[0] is Status.OK
    status, message = judge(config, state, T0 + 25 * H)
    assert status is Status.WARNING and message.startswith("late: due 1 h ago")
    status, message = judge(config, state, T0 + 26 * H + 1)
    assert status is Status.CRITICAL
    assert message.startswith("no report since 2026-03-02T12:00:00Z: due 2 h ago, grace 2h")


def test_never_pinged_counts_from_when_watching_began() -> None:
    config = cfg(period="1h", grace="30m")
    assert judge(config, PushState(), T0 + 1 * H)[0] is Status.OK
    status, message = judge(config, PushState(), T0 + 1.6 * H)
    assert status is Status.CRITICAL and "no report since watching began" in message


def test_cron_schedule_in_agent_timezone_with_grace() -> None:
    # 02:00 Stockholm is 01:00 UTC in March: due the night after the success at 13:00.
    config = cfg(schedule="0 2 * * *", grace="2h")
    state = apply_ping(PushState(), "success", T0, "")
    due = datetime(2026, 3, 3, 1, 0, tzinfo=UTC).timestamp()
    assert judge(config, state, due - 60)[0] is Status.OK
    assert judge(config, state, due + 60)[0] is Status.WARNING
    assert judge(config, state, due + 2 * H + 60)[0] is Status.CRITICAL


def test_fail_and_exit_status_are_critical_until_a_success() -> None:
    config = cfg(period="1d")
    failed = apply_ping(PushState(), "fail", T0, "disk full")
    assert judge(config, failed, T0 + 60) == (Status.CRITICAL, "job failed 1 min ago: disk full")
    exited = apply_ping(failed, "fail", T0, "", exit_status=3)
    assert judge(config, exited, T0)[1] == "job exited 3 0 s ago"
    fixed = apply_ping(exited, "success", T0 + 120, "ok again")
    status, message = judge(config, fixed, T0 + 180)
    assert (
        status is Status.OK and message == "last success 1 min ago (2026-03-02T12:02:00Z): ok again"
    )


def test_max_runtime_after_a_start() -> None:
    config = cfg(period="1d", max_runtime="4h")
    done = apply_ping(PushState(), "success", T0, "")
    started = apply_ping(done, "start", T0 + H, "")
    status, message = judge(config, started, T0 + 2 * H)
    assert status is Status.OK and message.endswith("running for 1 h")
    status, message = judge(config, started, T0 + 5 * H + 1)
    assert status is Status.CRITICAL
    assert message == "started 4 h ago and not finished within max_runtime 4h"
    finished = apply_ping(started, "success", T0 + 5.5 * H, "")
    assert judge(config, finished, T0 + 6 * H)[0] is Status.OK


def test_message_is_the_tail_without_the_token_or_controls() -> None:
    body = ("x" * 5000 + f" token={TOKEN}\r\n\x1b[31mdone: 12 GB").encode()
    message = clean_message(body, secret=TOKEN)
    assert TOKEN not in message and "\x1b" not in message
    assert message.endswith("token=*** [31mdone: 12 GB") and len(message) == 1000


def test_config_needs_one_token_and_one_schedule() -> None:
    errors = {
        "one of token or token_file": {"token_file": "/x", "period": "1h"},
        "one of period or schedule": {"period": "1h", "schedule": "0 2 * * *"},
        "invalid cron": {"schedule": "0 25 * * *"},
    }
    for expected, keys in errors.items():
        with pytest.raises(ValidationError) as exc:
            cfg(**keys)
        assert expected in str(exc.value), keys
    with pytest.raises(ValidationError, match="too short"):
        PushConfig.model_validate({"name": "j", "type": "push", "token": "short", "period": "1h"})


def test_first_run_records_when_watching_began() -> None:
    store = MemoryStateStore()
    clock = [T0]
    ctx = CheckContext(Path("/nonexistent"), "t", clock=lambda: clock[0], store=store)
    check = PushCheck(cfg(period="1h", grace="0s"), ctx)
    assert asyncio.run(check.run()).status is Status.OK
    clock[0] = T0 + 1.5 * H  # "watching began" stays T0 instead of moving with every run
    assert asyncio.run(check.run()).status is Status.CRITICAL


def test_push_backup_is_ready_while_younger_than_the_rpo() -> None:
    config = config_from(
        """
checks:
  - {name: veeam, type: push, token: "push-token-0123456789abcdef", period: 1d}
departments:
  - id: d
    systems:
      - {id: s, checks: [veeam], backups: [{check: veeam, rpo: 26h}]}
"""
    )
    push = config.check("veeam")
    assert isinstance(push, PushConfig)
    fresh = evaluate(push, apply_ping(PushState(), "success", T0, ""), T0, T0 + H, "UTC")
    doc = readiness.report(config, {"veeam": fresh}, T0 + H)
    (backup,) = doc["departments"][0]["systems"][0]["backups"]
    assert backup["ready"] is True and backup["newest_at"] == "2026-03-02T12:00:00Z"
    stale = readiness.report(config, {"veeam": fresh}, T0 + 27 * H)
    reasons = stale["departments"][0]["systems"][0]["reasons"]
    assert reasons == ["veeam: newest successful run 27 h old, RPO 26 h"]


# -- a real daemon ----------------------------------------------------------------

CONFIG = """
agent:
  name: push-test
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  web:
    users:
      ops: {{password_hash: "{hashed}", role: operator}}
channels:
  hook: {{type: webhook, url: "{hook}", default: true}}
checks:
  - {{name: veeam, type: push, token: "${{PUSH_TOKEN}}", period: 1h, interval: 0.5s}}
  - {{name: nas, type: push, token_file: {token_file}, period: 2s, grace: 1s, interval: 0.2s}}
  - {{name: export, type: push, token: "${{PUSH_TOKEN}}", period: 1h, max_runtime: 1s,
      interval: 0.2s}}
departments:
  - id: finance
    systems:
      - {{id: ledger, checks: [veeam], rto: 1h, backups: [{{check: veeam, rpo: 26h}}]}}
    escalation: [{{after: 0m, notify: [hook]}}]
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("push")
    port = free_port()
    token_file = tmp / "nas.token"
    token_file.write_text(FILE_TOKEN + "\n")
    with ThreadedReceiver() as receiver:
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
        cfg_path = tmp / "vaktpost.yaml"
        cfg_path.write_text(
            CONFIG.format(
                port=port,
                state=tmp / "state",
                hashed=hashed,
                hook=receiver.url,
                token_file=token_file,
            )
        )
        base = f"http://127.0.0.1:{port}"
        env = {"PUSH_TOKEN": TOKEN}
        world: dict[str, Any] = {"base": base, "cfg": cfg_path, "log": tmp / "daemon.log"}
        world.update(rx=receiver, env=env, responses=[])
        with signal_daemon(cfg_path, tmp / "daemon.log", base, env) as proc:
            world["proc"] = proc
            yield world


def ping(world: dict[str, Any], path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    status, body, raw = send(world["base"] + path, **kw)
    world["responses"].append(raw)
    return status, body


def bearer(token: str = TOKEN, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def test_curl_ping_with_no_body_and_query_token_records_a_success(world: dict[str, Any]) -> None:
    status, body = ping(world, f"/api/v1/push/veeam?token={TOKEN}")
    assert (status, body) == (200, {"status": "recorded", "check": "veeam", "ping": "success"})
    check = wait_for(
        lambda: (
            (c := checks_of(world["base"])["veeam"])["message"].startswith("last success") and c
        ),
        5,
        "veeam evaluated",
    )
    assert check["status"] == "ok"
    _, metrics = http_get(world["base"] + "/metrics")
    assert 'vaktpost_push_last_success_timestamp_seconds{check="veeam"}' in metrics


def test_text_body_by_bearer_post_is_the_last_message(world: dict[str, Any]) -> None:
    headers = bearer(**{"Content-Type": "text/plain", "Origin": "http://127.0.0.2:1"})
    status, _ = ping(
        world, "/api/v1/push/veeam", method="POST", body=b"12 GB in 31 min", headers=headers
    )
    assert status == 200
    wait_for(
        lambda: checks_of(world["base"])["veeam"]["message"].endswith(": 12 GB in 31 min"),
        5,
        "message kept",
    )


def test_bad_requests_get_json_errors_and_change_nothing(world: dict[str, Any]) -> None:
    ping(world, f"/api/v1/push/veeam?token={TOKEN}", method="POST", body=b"before")
    wait_for(lambda: checks_of(world["base"])["veeam"]["message"].endswith("before"), 5, "before")
    before = checks_of(world["base"])["veeam"]["facts"]["last_ping_timestamp"]
    cases = [
        ("/api/v1/push/veeam", {}, None, 401, "token required"),
        ("/api/v1/push/veeam", bearer("wrong-token-0123456789"), None, 403, "wrong token"),
        (f"/api/v1/push/veeam?token={FILE_TOKEN}", {}, None, 403, "wrong token"),
        (f"/api/v1/push/nothere?token={TOKEN}", {}, None, 404, "no push check"),
        (f"/api/v1/push/veeam/999?token={TOKEN}", {}, None, 404, "use /start"),
        (f"/api/v1/push/veeam?token={TOKEN}", {}, b"x" * (64 * 1024 + 1), 413, "over 65536"),
    ]
    for path, headers, body, code, text in cases:
        status, answer = ping(world, path, method="POST", body=body, headers=headers)
        assert status == code and text in answer["error"], (path, status, answer)
    assert checks_of(world["base"])["veeam"]["facts"]["last_ping_timestamp"] == before
    assert checks_of(world["base"])["veeam"]["message"].endswith("before")


def test_silence_past_period_and_grace_is_critical_for_real(world: dict[str, Any]) -> None:
    status, _ = ping(world, "/api/v1/push/nas", headers=bearer(FILE_TOKEN))
    assert status == 200
    wait_for(lambda: status_of(world["base"], "nas") == "ok", 5, "nas ok")
    wait_for(lambda: status_of(world["base"], "nas") == "warning", 5, "nas late")
    message = wait_for(
        lambda: (c := checks_of(world["base"])["nas"])["status"] == "critical" and c["message"],
        5,
        "nas critical",
    )
    assert message.startswith("no report since ")


def test_start_without_success_within_max_runtime(world: dict[str, Any]) -> None:
    assert ping(world, f"/api/v1/push/export/start?token={TOKEN}")[0] == 200
    message = wait_for(
        lambda: (c := checks_of(world["base"])["export"])["status"] == "critical" and c["message"],
        5,
        "export over max_runtime",
    )
    assert "max_runtime 1s" in message
    assert ping(world, f"/api/v1/push/export/0?token={TOKEN}")[0] == 200
    wait_for(lambda: status_of(world["base"], "export") == "ok", 5, "export ok after exit 0")


def test_failed_backup_drives_the_ladder_and_success_resolves(world: dict[str, Any]) -> None:
    rx = world["rx"].receiver
    assert (
        ping(world, f"/api/v1/push/veeam/fail?token={TOKEN}", method="POST", body=b"VSS error")[0]
        == 200
    )

    def ledger(status: str) -> list[dict[str, Any]]:
        return [
            b
            for b in list(rx.received)
            if b.get("status") == status and "/finance/ledger/" in str(b.get("dedup_key"))
        ]

    firing = wait_for(lambda: ledger("firing"), 10, "firing")
    assert "VSS error" in json.dumps(firing[0])
    _, doc = http_get(world["base"] + "/api/v1/departments")
    (system,) = json.loads(doc)["departments"][0]["systems"]
    assert system["up"] is False
    assert ping(world, f"/api/v1/push/veeam/0?token={TOKEN}")[0] == 200
    wait_for(lambda: ledger("resolved"), 10, "resolved")


def test_tokens_appear_in_no_output(world: dict[str, Any]) -> None:
    _, page = http_get(world["base"] + "/")
    _, metrics = http_get(world["base"] + "/metrics")
    _, checks = http_get(world["base"] + "/api/v1/checks")
    outputs = [world["log"].read_text(), page, metrics, checks, *world["responses"]]
    outputs += [json.dumps(b) for b in list(world["rx"].receiver.received)]
    for text in outputs:
        assert TOKEN not in text and FILE_TOKEN not in text


def test_restart_keeps_the_last_success(world: dict[str, Any]) -> None:
    def last_success() -> float | None:
        veeam = checks_of(world["base"])["veeam"]
        value = veeam["facts"].get("last_success_timestamp") if veeam["status"] == "ok" else None
        return None if value is None else float(value)

    before = last_success()  # an earlier test of this module may have pinged already
    ping(world, f"/api/v1/push/veeam?token={TOKEN}")
    # The result of a probe after this ping, not one from before it.
    last = wait_for(lambda: (v := last_success()) is not None and v != before and v, 5, "ok")
    proc = world["proc"]
    proc.terminate()
    proc.wait(timeout=8)
    with signal_daemon(world["cfg"], world["log"], world["base"], world["env"]) as again:
        world["proc"] = again
        check = wait_for(
            lambda: (c := checks_of(world["base"])["veeam"])["status"] == "ok" and c, 5, "rerun"
        )
        assert check["facts"]["last_success_timestamp"] == last
        _, doc = http_get(world["base"] + "/api/v1/departments")
        (backup,) = json.loads(doc)["departments"][0]["systems"][0]["backups"]
        assert backup["ready"] is True and backup["type"] == "push"
