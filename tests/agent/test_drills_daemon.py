"""A drill through a running daemon: the message goes to the on-duty number through a
command channel (standing in for a GSM modem, as in tests/alerting/test_ack_sms.py), the reply
comes back through `vaktpost sms-received`, and the drill is passed, with metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.alerting.test_ack_sms import RECORDER, sent, sms_received
from tests.helpers import AgentProcess, free_port, wait_until

CONFIG = """
agent:
  name: drill-e2e
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: sv
  timezone: Europe/Stockholm
  external_url: http://127.0.0.1:{port}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [sms]}}
rotations:
  tib: {{members: [anna]}}
channels:
  sms: {{type: command, argv: ["{python}", "{recorder}", "{sent}", "{{phone}}"],
         requires_internet: false}}
drills:
  - {{name: weekly-sms, notify: ["rotation:tib"], cron: "0 10 * * WED", ack_within: 15m}}
"""


def test_a_drill_run_by_the_api_is_passed_by_an_sms_reply(tmp_path: Path) -> None:
    recorder, out = tmp_path / "modem.py", tmp_path / "sent.jsonl"
    recorder.write_text(RECORDER)
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port, state=tmp_path / "state", python=sys.executable, recorder=recorder, sent=out
        )
    )
    with AgentProcess(cfg, tmp_path / "agent.log", port=port) as agent:
        agent.wait_ready()
        status, _ = agent.request("POST", "/api/v1/drills/nope/run", b"{}")
        assert status == 404
        status, body = agent.request("POST", "/api/v1/drills/weekly-sms/run", b"{}")
        assert status == 200, body
        code = json.loads(body)["code"]
        page = wait_until(lambda: sent(out), 20, "the drill message to the modem")[0]
        assert page["argv"] == ["+46701234567"]
        text = page["payload"]["text"]
        assert text.startswith("ÖVNING: weekly-sms") and f"Svara K {code}" in text
        assert page["payload"]["ack_url"].startswith(f"{agent.base}/drill-ack/weekly-sms/")

        # The link's GET changes nothing (a mail scanner opens links).
        status, _ = agent.get(page["payload"]["ack_url"].removeprefix(agent.base))
        assert status == 200
        _, body = agent.get("/api/v1/drills")
        assert json.loads(body)["drills"][0]["runs"][-1]["result"] == "open"

        lines = sms_received(
            agent.base,
            {"SMS_MESSAGES": "1", "SMS_1_NUMBER": "0701234567", "SMS_1_TEXT": f"K {code}"},
        )
        assert lines[0].split(": ")[1] == "acknowledged", lines
        _, body = agent.get("/api/v1/drills")
        run = json.loads(body)["drills"][0]["runs"][-1]
        assert run["result"] == "passed" and run["acked_by"] == "Anna Lind"
        assert run["acked_via"] == "sms" and run["ack_seconds"] >= 0
        _, metrics = agent.get("/metrics")
        assert b'vaktpost_drill_ack_seconds{drill="weekly-sms"}' in metrics
        assert b'vaktpost_drill_last_success_timestamp_seconds{drill="weekly-sms"} 0.0' not in (
            metrics
        )
