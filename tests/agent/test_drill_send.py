"""`vaktpost drill --send-to CHANNEL` really sends, to a real webhook receiver, and
every message is unmistakably a drill; without `--send-to` nothing is sent."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from alerting.channels.alertmanager import to_alert
from alerting.drill import drill_payloads, run_drill
from tests.alerting_fixtures import ThreadedReceiver, config_from
from tests.helpers import ROOT, vaktpost_cmd

CONFIG = """
agent: {{name: town, language: {language}, state_dir: {state}}}
channels:
  hook: {{type: webhook, url: "{hook}"}}
  duty: {{type: log}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 1}}
departments:
  - id: social
    name: Social services
    systems:
      - {{id: case, name: Case files, checks: [web], rto: 2h, mtpd: 8h, fallback: Paper forms}}
    escalation:
      - {{after: 0m, notify: [hook, duty]}}
      - {{after: 30m, notify: [duty]}}
      - {{after: rto, notify: [hook], message: "RTO breached"}}
"""
DRILL = ["--system", "social/case", "--duration", "4h", "--recover-after", "3h"]


def drill(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vaktpost_cmd("drill", "-c", str(cfg), *DRILL, "--format", "json", *extra),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_send_to_delivers_marked_drill_notifications_and_nothing_without_it(
    tmp_path: Path,
) -> None:
    with ThreadedReceiver() as hook:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(CONFIG.format(language="en", state=tmp_path / "s", hook=hook.url))

        quiet = drill(cfg)
        assert quiet.returncode == 0, quiet.stderr
        assert hook.receiver.received == [], "a drill without --send-to sent something"

        sent = drill(cfg, "--send-to", "hook")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout) == json.loads(quiet.stdout), "stdout is the timeline"
        received = list(hook.receiver.received)
        keys = [r["dedup_key"] for r in received]
        (run,) = {k.rpartition("/drill-")[2] for k in keys}
        assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z", run), keys
        base = [k.rpartition("/drill-")[0] for k in keys]
        # Step 0 went to two channels in the plan: one payload. Step 1 (duty only) too.
        assert base == [
            "town/social/case/1/0",
            "town/social/case/1/1",
            "town/social/case/1/2",
            "town/social/case/1/resolved",
        ]
        for body in received:
            assert body["drill"] is True
            assert body["text"].startswith("[DRILL] [")
            assert "This is a drill (vaktpost drill), not a real outage." in body["text"]
            assert "vaktpost ack" not in body["text"], "a drill must not ask to ack incident 1"
        assert [r["status"] for r in received] == ["firing", "firing", "firing", "resolved"]
        assert received[2]["message"] == "RTO breached"
        assert sent.stderr.count("drill: sent ") == 4

        again = drill(cfg, "--send-to", "hook")
        assert again.returncode == 0, again.stderr
        second = [r["dedup_key"] for r in hook.receiver.received[len(received) :]]
        assert len(second) == 4 and not set(second) & set(keys), "each drill run has own keys"


def test_drill_to_an_unreachable_channel_fails_but_prints_the_timeline(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(language="en", state=tmp_path / "s", hook="http://127.0.0.1:1/hook")
    )
    out = drill(cfg, "--send-to", "hook")
    assert out.returncode == 1
    assert json.loads(out.stdout)["system"] == "case"
    assert re.search(r"drill: could not send town/social/case/1/0/drill-\S+: ", out.stderr)
    assert "127.0.0.1:1" in out.stderr or "refused" in out.stderr.lower()


def test_drill_payloads_in_swedish_and_as_alertmanager_alerts(tmp_path: Path) -> None:
    config = config_from(CONFIG.format(language="sv", state=tmp_path, hook="http://hook.invalid/"))
    result = run_drill(config, "social/case", 4 * 3600, 1_700_000_000.0)
    payloads = drill_payloads(result, "R1", "sv")
    assert [p["dedup_key"] for p in payloads] == [
        "town/social/case/1/0/drill-R1",
        "town/social/case/1/1/drill-R1",
        "town/social/case/1/2/drill-R1",
    ]
    for payload in payloads:
        assert payload["text"].startswith("[ÖVNING] [LARM] Social services: Case files")
        assert "Detta är en övning (vaktpost drill), inget verkligt avbrott." in payload["text"]
        assert "vaktpost ack" not in payload["text"]
    # The engine's own notifications stay unmarked: only the copies are drills.
    assert "drill" not in result.notifications[0].payload
    assert result.notifications[0].payload["text"].startswith("[LARM]")

    drill_alert = to_alert(payloads[0])
    assert drill_alert["labels"]["alertname"] == "VaktpostDrill"
    assert drill_alert["labels"]["drill"] == "true"
    real_alert = to_alert(result.notifications[0].payload)
    assert real_alert["labels"]["alertname"] == "VaktpostIncident"
    assert "drill" not in real_alert["labels"]
