"""Alertmanager in: the v4 webhook into `alert` checks (issue 12).

Unit tests merge payloads on an injected clock; the end-to-end tests run a real
Alertmanager (and an HA pair) whose webhook receiver is a real daemon, whose own
webhook channel goes to a loopback receiver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.alert import AlertConfig, WebhookPayload, entry_of, evaluate, fingerprint, ingest
from checks.base import Status
from tests.alerting_fixtures import CI, ThreadedReceiver, free_port, http_get, wait_for
from tests.helpers import ROOT
from tests.signals_fixtures import checks_of, send, signal_daemon, status_of

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
AM_TOKEN = "am-token-0123456789abcdef"
BINARY = shutil.which("prometheus-alertmanager")
RULE = AlertConfig.model_validate(
    {
        "name": "app01",
        "type": "alert",
        "match": {"alertname": "NodeDown", "instance": "srv-app01:*"},
    }
)


def am_alert(status: str, starts: str = "2026-03-02T11:58:00.123456789Z", **labels: str) -> Any:
    return {
        "status": status,
        "labels": {"alertname": "NodeDown", "instance": "srv-app01:9100", **labels},
        "annotations": {"summary": "srv-app01 does not answer", "description": "long text"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-03-02T12:01:00Z",
        "fingerprint": "abc123",
    }


def merge(table: dict[str, Any], *alerts: Any, at: float = T0) -> int:
    payload = WebhookPayload.model_validate(
        {"version": "4", "status": "firing", "receiver": "vaktpost", "alerts": list(alerts)}
    )
    return ingest(table, {fingerprint(a): entry_of(a, at) for a in payload.alerts}, at)


# -- merging and judging, on an injected clock ---------------------------------------


def test_firing_is_critical_with_the_summary_and_resolution_is_ok() -> None:
    table: dict[str, Any] = {}
    assert merge(table, am_alert("firing")) == 1
    result = evaluate(RULE, table, T0)
    assert result.status is Status.CRITICAL
    assert (
        result.message
        == "NodeDown on srv-app01:9100 firing since 2 min ago: srv-app01 does not answer"
    )
    assert merge(table, am_alert("firing")) == 0, "a repeat changes nothing"
    merge(table, am_alert("resolved"), at=T0 + 60)
    assert evaluate(RULE, table, T0 + 61).status is Status.OK


def test_a_stale_duplicate_from_an_ha_peer_does_not_reopen() -> None:
    table: dict[str, Any] = {}
    merge(table, am_alert("firing"))
    merge(table, am_alert("resolved"), at=T0 + 60)
    assert merge(table, am_alert("firing"), at=T0 + 61) == 0
    assert evaluate(RULE, table, T0 + 62).status is Status.OK
    # The same alert firing anew (a later startsAt) does open it again.
    merge(table, am_alert("firing", starts="2026-03-02T12:10:00Z"), at=T0 + 600)
    assert evaluate(RULE, table, T0 + 601).status is Status.CRITICAL


def test_severity_warning_globs_and_past_ends_at() -> None:
    table: dict[str, Any] = {}
    merge(table, am_alert("firing", severity="warning"))
    assert evaluate(RULE, table, T0).status is Status.WARNING
    other = AlertConfig.model_validate(
        {"name": "o", "type": "alert", "match": {"instance": "srv-app02:*"}}
    )
    assert evaluate(other, table, T0).status is Status.OK
    ending = {**am_alert("firing"), "fingerprint": "f2", "endsAt": "2026-03-02T12:05:00Z"}
    merge(table, ending)
    assert evaluate(RULE, table, T0).message.startswith("2 alerts firing; ")
    assert evaluate(RULE, table, T0 + 6 * 60).status is Status.WARNING, "f2 past its endsAt"


# -- a real daemon, and a real Alertmanager ------------------------------------------

DAEMON = """
agent:
  name: am-in
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  web: {{alertmanager_token_file: {token}}}
channels:
  hook: {{type: webhook, url: "{hook}", default: true}}
checks:
  - {{name: app01-node-down, type: alert, interval: 5s,
      match: {{alertname: NodeDown, instance: "srv-app01:*"}}}}
departments:
  - id: it
    systems:
      - {{id: app01, checks: [app01-node-down], rto: 1h}}
    escalation: [{{after: 0m, notify: [hook]}}]
"""

AM = """
route:
  receiver: vaktpost
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vaktpost
    webhook_configs:
      - url: "{url}"
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: {token}}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("am-in")
    token = tmp / "am.token"
    token.write_text(AM_TOKEN + "\n")
    port = free_port()
    with ThreadedReceiver() as receiver:
        cfg = tmp / "vaktpost.yaml"
        cfg.write_text(
            DAEMON.format(port=port, state=tmp / "state", token=token, hook=receiver.url)
        )
        base = f"http://127.0.0.1:{port}"
        with signal_daemon(cfg, tmp / "daemon.log", base):
            yield {"base": base, "tmp": tmp, "token": token, "rx": receiver.receiver}


def post(world: dict[str, Any], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    status, data, _raw = send(world["base"] + "/api/v1/alertmanager", "POST", body, headers)
    return status, data


def test_bad_webhooks_get_json_errors_and_change_nothing(world: dict[str, Any]) -> None:
    good = json.dumps({"version": "4", "status": "firing", "alerts": [am_alert("firing")]})
    auth = {"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"}
    wrong_type = json.dumps({"version": "4", "status": "firing", "alerts": [{"labels": []}]})
    cases = [
        (good.encode(), {"Content-Type": "application/json"}, 401, "token required"),
        (good.encode(), {"Authorization": "Bearer nope-nope-nope"}, 403, "wrong token"),
        (b"{not json", auth, 400, "invalid JSON body"),
        (good.replace('"4"', '"3"').encode(), auth, 400, "version"),
        (wrong_type.encode(), auth, 400, "alerts.0."),
        (b"[" * 70000, auth, 413, "over 65536"),
    ]
    for body, headers, code, text in cases:
        status, answer = post(world, body, headers)
        assert status == code and text in answer["error"], (status, answer)
        assert AM_TOKEN not in json.dumps(answer)
    assert status_of(world["base"], "app01-node-down") in (None, "ok")
    assert checks_of(world["base"])["app01-node-down"]["facts"].get("alerts_firing", 0) == 0


def start_am(tmp: Path, url: str, token: Path, cluster: list[str]) -> tuple[Any, int]:
    if BINARY is None:
        if CI:
            pytest.fail("prometheus-alertmanager is not installed (CI=true)")
        pytest.skip("prometheus-alertmanager is not installed")
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "am.yml").write_text(AM.format(url=url, token=token))
    log = (tmp / "am.log").open("ab")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp / 'am.yml'}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *cluster,
        ],
        stdout=log,
        stderr=log,
    )
    log.close()

    def ready() -> bool:
        assert proc.poll() is None, (tmp / "am.log").read_text()
        return http_get(f"http://127.0.0.1:{port}/-/ready")[0] == 200

    wait_for(ready, 20, "alertmanager ready", every=0.1)
    return proc, port


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def push_alert(port: int, resolve: bool = False, starts: str | None = None) -> None:
    alert: dict[str, Any] = {
        "labels": {"alertname": "NodeDown", "instance": "srv-app01:9100", "job": "node"},
        "annotations": {"summary": "srv-app01 is down"},
        "startsAt": starts or datetime.now(UTC).isoformat(),
    }
    if resolve:
        alert["endsAt"] = datetime.now(UTC).isoformat()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def ladder(world: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [
        b
        for b in list(world["rx"].received)
        if b.get("status") == status and "/it/app01/" in str(b.get("dedup_key"))
    ]


def test_real_alertmanager_drives_the_ladder_and_resolves(
    world: dict[str, Any], procs: list[Any]
) -> None:
    url = world["base"] + "/api/v1/alertmanager"
    proc, port = start_am(world["tmp"] / "am1", url, world["token"], ["--cluster.listen-address="])
    procs.append(proc)
    starts = datetime.now(UTC).isoformat()
    push_alert(port, starts=starts)
    firing = wait_for(lambda: ladder(world, "firing"), 20, "an incident from the alert")
    assert "srv-app01 is down" in json.dumps(firing[0])
    check = checks_of(world["base"])["app01-node-down"]
    assert check["status"] == "critical" and check["message"].startswith("NodeDown on srv-app01")
    push_alert(port, resolve=True, starts=starts)
    wait_for(lambda: ladder(world, "resolved"), 20, "the resolved notice")
    assert status_of(world["base"], "app01-node-down") == "ok"


def test_ha_pair_duplicates_give_one_incident(world: dict[str, Any], procs: list[Any]) -> None:
    before = {b["dedup_key"] for b in ladder(world, "firing")}
    url = world["base"] + "/api/v1/alertmanager"
    a, b = free_port(), free_port()
    peer = [f"--cluster.listen-address=127.0.0.1:{a}", f"--cluster.peer=127.0.0.1:{b}"]
    other = [f"--cluster.listen-address=127.0.0.1:{b}", f"--cluster.peer=127.0.0.1:{a}"]
    first, port1 = start_am(world["tmp"] / "ha1", url, world["token"], peer)
    procs.append(first)
    second, port2 = start_am(world["tmp"] / "ha2", url, world["token"], other)
    procs.append(second)
    starts = datetime.now(UTC).isoformat()
    # Prometheus sends every alert to every Alertmanager of the pair.
    push_alert(port1, starts=starts)
    push_alert(port2, starts=starts)
    wait_for(lambda: status_of(world["base"], "app01-node-down") == "critical", 20, "critical")
    new = wait_for(
        lambda: [x for x in ladder(world, "firing") if x["dedup_key"] not in before], 20, "firing"
    )
    assert checks_of(world["base"])["app01-node-down"]["facts"]["alerts_firing"] == 1
    wait_until = time.monotonic() + 3  # both peers have had time to send their copies
    wait_for(lambda: time.monotonic() > wait_until, 5, "peers settled")
    keys = [x["dedup_key"] for x in ladder(world, "firing") if x["dedup_key"] not in before]
    assert keys == [new[0]["dedup_key"]], keys
    push_alert(port1, resolve=True, starts=starts)
    push_alert(port2, resolve=True, starts=starts)
    wait_for(lambda: status_of(world["base"], "app01-node-down") == "ok", 20, "resolved")


def test_deploy_example_is_a_valid_alertmanager_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        if CI:
            pytest.fail("amtool is not installed (CI=true)")
        pytest.skip("amtool is not installed")
    example = ROOT / "deploy/alertmanager/vaktpost-receiver.yml"
    done = subprocess.run([amtool, "check-config", str(example)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/api/v1/alertmanager" in example.read_text()
