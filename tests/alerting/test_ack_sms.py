"""Acknowledging by SMS reply: a daemon pages `rotation:tib` through a command channel,
and the reply comes back through `vaktpost sms-received`.

There is no GSM modem here: the command channel's program is a small script that
appends its argv and stdin to a file (it stands in for the modem's send tool), and
the test sets gammu-smsd's RunOnReceive environment itself (SMS_MESSAGES,
SMS_n_NUMBER, SMS_n_TEXT), as gammu-smsd would when the reply arrives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from alerting.ackcodes import assign_code, e164, parse_reply, person_by_phone
from tests.alerting_fixtures import TcpTarget, config_from
from tests.helpers import ROOT, AgentProcess, free_port, vaktpost_cmd, wait_until

RECORDER = """
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(json.dumps({"argv": sys.argv[2:], "payload": json.loads(sys.stdin.read())}) + "\\n")
"""

CONFIG = """
agent:
  name: sms-e2e
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  timezone: Europe/Stockholm
  defaults: {{interval: 0.3s, timeout: 1s, failures_before_alert: 1}}
people:
  anna: {{name: Anna Lind, phone: "+46701234567", via: [sms]}}
  bertil: {{name: Bertil Ek, phone: "+46707654321", via: [sms]}}
rotations:
  tib: {{members: [anna, bertil], handoff: "MON 08:00", every: 1w}}
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
      - {{after: 0s, notify: ["rotation:tib"]}}
      - {{after: 5s, notify: ["rotation:tib"], message: second step}}
"""


def sent(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sms_received(base: str, env: dict[str, str], *args: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMS_")}
    done = subprocess.run(
        vaktpost_cmd("sms-received", "--url", base, *args),
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def incident(agent: AgentProcess, state: str = "open") -> dict[str, Any] | None:
    status, body = agent.get(f"/api/v1/incidents?state={state}")
    assert status == 200
    found = json.loads(body)["incidents"]
    return found[0] if found else None


def national(number: str) -> str:
    """+46701234567 as people write it at home: 070-123 45 67."""
    rest = number[3:]
    return f"0{rest[:2]}-{rest[2:5]} {rest[5:7]} {rest[7:]}"


def test_sms_reply_from_the_person_on_duty_acknowledges(tmp_path: Path) -> None:
    recorder, out = tmp_path / "modem.py", tmp_path / "sent.jsonl"
    recorder.write_text(RECORDER)
    target = TcpTarget()  # bound, not listening: the check fails at once
    port = free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port,
            state=tmp_path / "state",
            python=sys.executable,
            recorder=recorder,
            sent=out,
            target=target.port,
        )
    )
    with AgentProcess(cfg, tmp_path / "agent.log", port=port) as agent:
        agent.wait_ready()
        on_duty = json.loads(agent.get("/api/v1/oncall")[1])["rotations"][0]["on_duty"]["id"]
        phone = {"anna": "+46701234567", "bertil": "+46707654321"}[on_duty]
        first = wait_until(lambda: sent(out), 20, "the page to the person on duty")[0]
        assert first["argv"] == [phone]
        page = first["payload"]
        code = page["ack_code"]
        assert page["kind"] == "firing" and code and len(code) == 4
        assert f"Reply K {code} to acknowledge" in page["text"]

        wrong = str(int(code) % 9000 + 1001)
        env = {
            "SMS_MESSAGES": "3",
            "SMS_1_NUMBER": "+46700000099",  # a stranger, with the right code
            "SMS_1_TEXT": f"K {code}",
            "SMS_2_NUMBER": phone,  # the right person, a code nobody holds
            "SMS_2_TEXT": f"K {wrong}",
            "SMS_3_NUMBER": national(phone),  # the same number, as written at home
            "SMS_3_TEXT": f"k {code} on my way",
        }
        lines = sms_received(agent.base, env)
        assert [line.split(": ")[1] for line in lines] == ["ignored", "ignored", "acknowledged"]

        acked = incident(agent)
        assert acked is not None and acked["status"] == "acknowledged"
        name = {"anna": "Anna Lind", "bertil": "Bertil Ek"}[on_duty]
        assert acked["acknowledged_by"] == name
        _, body = agent.get(f"/api/v1/incidents/{acked['id']}")
        timeline = json.loads(body)
        assert f"{name} via sms: on my way" in json.dumps(timeline, ensure_ascii=False)

        def confirmation() -> dict[str, Any] | None:
            notes = [s for s in sent(out) if s["payload"]["kind"] == "acknowledged"]
            return notes[0] if notes else None

        note = wait_until(confirmation, 15, "the confirmation to the person who acked")
        assert note["argv"] == [phone]
        assert f"Acknowledged by {name} via sms." in note["payload"]["text"]
        assert "Comment: on my way" in note["payload"]["text"]

        # The second step would be due 5 s after the start: acknowledged, it never comes.
        started = time.time()
        wait_until(lambda: time.time() > started + 6.5, 10, "past the second step's time")
        assert incident(agent)["steps_taken"] == [0]  # type: ignore[index]
        assert not [s for s in sent(out) if "second step" in s["payload"]["text"]]

        target.open()
        wait_until(lambda: incident(agent, "resolved"), 20, "the incident to resolve")
        wait_until(
            lambda: [s for s in sent(out) if s["payload"]["kind"] == "resolved"],
            15,
            "the resolved notice",
        )
        before = len(sent(out))
        lines = sms_received(agent.base, {}, "--from", phone, "--text", f"K {code}")
        assert lines[0].endswith(f"ignored: no open incident has code {code}")
        assert incident(agent) is None
        assert len(sent(out)) == before
        log = agent.log_text()
        assert "sms reply changed nothing" in log


def test_codes_replies_and_numbers() -> None:
    assert parse_reply("K 4711") == ("4711", "")
    assert parse_reply("k4711 on my way") == ("4711", "on my way")
    assert parse_reply("Kvittera 4711") == ("4711", "")
    assert parse_reply("hello") is None
    assert e164("070-123 45 67") == e164("+46701234567") == e164("0046 70 123 45 67")
    assert e164("not a number") is None
    cfg = config_from(
        "agent: {name: x, state_dir: /tmp/x}\n"
        "people: {anna: {phone: '+46701234567', via: [log]}}\n"
        "channels: {log: {type: log}}\n"
    )
    assert person_by_phone(cfg.people, "070-123 45 67") == "anna"
    assert person_by_phone(cfg.people, "+46701234568") is None
    taken = {assign_code("a/1", set())}
    second = assign_code("a/1", taken)
    assert second not in taken and len(second) == 4
