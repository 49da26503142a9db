"""Signed ack links: GET shows and changes nothing, POST acknowledges "via link",
tampered, expired and resolved links are refused with a page, and the key never shows.

The command channel's program is a script that appends its argv and stdin to a
file: it stands in for the GSM modem (or any channel) and hands the test the link.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from alerting.acklinks import KEY_NAME, KEY_OWNER, LINK_TTL, LinkSigner
from tests.alerting.test_ack_sms import RECORDER, incident, sent
from tests.alerting_fixtures import TcpTarget
from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  name: link-e2e
  listen: 127.0.0.1:{port}
  external_url: http://127.0.0.1:{port}/
  state_dir: {state}
  language: en
  defaults: {{interval: 0.3s, timeout: 1s, failures_before_alert: 1}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [sms]}}
channels:
  sms: {{type: command, argv: ["{python}", "{recorder}", "{sent}", "{{phone}}"],
         requires_internet: false}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {target}}}
departments:
  - id: dept
    name: Department
    systems:
      - {{id: app, name: The App, checks: [app], rto: 1h}}
    escalation:
      - {{after: 0s, notify: ["person:anna"]}}
"""


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, str]:
    req = urllib.request.Request(url, body if method == "POST" else None, method=method)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def form_post(url: str, origin: str) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin}
    return call(url, "POST", headers, b"")


def link_key(state: Path) -> bytes:
    with sqlite3.connect(state / "vaktpost.db") as db:
        row = db.execute(
            "SELECT value FROM check_state WHERE check_name=? AND key=?", (KEY_OWNER, KEY_NAME)
        ).fetchone()
    return bytes.fromhex(json.loads(row[0]))


def test_ack_link_get_confirms_post_acknowledges(tmp_path: Path) -> None:
    recorder, out, state = tmp_path / "modem.py", tmp_path / "sent.jsonl", tmp_path / "state"
    recorder.write_text(RECORDER)
    target = TcpTarget()
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port,
            state=state,
            python=sys.executable,
            recorder=recorder,
            sent=out,
            target=target.port,
        )
    )
    with AgentProcess(cfg, tmp_path / "agent.log", port=port) as agent:
        agent.wait_ready()
        page_msg: dict[str, Any] = wait_until(lambda: sent(out), 20, "the page")[0]["payload"]
        link = page_msg["ack_url"]
        assert link.startswith(f"{agent.base}/ack/")
        assert f"Acknowledge by link: {link}" in page_msg["text"]
        key = link_key(state)

        for _ in range(2):  # a mail scanner, then the person: neither GET acknowledges
            status, page = call(link)
            assert status == 200
            assert "Department: The App" in page and '<form method="post">' in page
            assert key.hex() not in page
        assert incident(agent)["acknowledged_by"] is None  # type: ignore[index]

        token = link.rsplit("/", 1)[1]
        tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
        other = link.replace(f"/ack/{token.split('.')[0]}.", "/ack/99.", 1)
        signer = LinkSigner(key, agent.base)
        expired = signer.url(int(token.split(".")[0]), 0, time.time() - LINK_TTL - 60, "anna")
        for bad, status_wanted, words in (
            (tampered, 403, "not valid"),
            (other, 403, "not valid"),
            (f"{agent.base}/ack/garbage", 400, "not valid"),
            (expired, 410, "expired"),
        ):
            for method in ("GET", "POST"):
                if method == "GET":
                    status, page = call(bad)
                else:
                    status, page = form_post(bad, agent.base)
                assert status == status_wanted, (bad, method, page)
                assert words in page and "Traceback" not in page
                assert key.hex() not in page
        assert incident(agent)["acknowledged_by"] is None  # type: ignore[index]

        # Another site's page cannot post the form for the person.
        status, _ = form_post(link, "http://127.0.0.2:1")
        assert status == 403
        assert incident(agent)["acknowledged_by"] is None  # type: ignore[index]

        status, page = form_post(link, agent.base)
        assert status == 200 and "Acknowledged by Anna Lind" in page
        acked = incident(agent)
        assert acked is not None and acked["acknowledged_by"] == "Anna Lind"
        timeline = agent.get(f"/api/v1/incidents/{acked['id']}")[1].decode()
        assert "Anna Lind via link" in timeline

        target.open()
        wait_until(lambda: incident(agent, "resolved"), 20, "the incident to resolve")
        status, page = call(link)
        assert status == 410 and "no longer works" in page
        assert key.hex() not in agent.log_text()
