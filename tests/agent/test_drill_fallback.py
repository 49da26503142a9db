"""`vaktpost drill` shows the fallback routine, in its table and in its JSON.

The fallback is what the people of a department do while the system is down;
a rehearsal that hides it rehearses the alert, not the plan.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

VAKTPOST = str(ROOT / ".venv" / "bin" / "vaktpost")
FALLBACK = "Use the paper forms in binder B; phone the duty officer on 0771-123 456."

CONFIG = """
agent:
  name: drill-agent
  language: {language}
  state_dir: {state}
channels:
  oncall: {{type: log, default: true}}
  crisis: {{type: log}}
checks:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 9}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - id: case
        name: Treserva
        checks: [web]
        rto: 2h
        mtpd: 8h
        fallback: "{fallback}"
    escalation:
      - {{after: 0m, notify: [oncall]}}
      - {{after: rto, notify: [crisis], message: "RTO breached: start the fallback routine"}}
"""


def drill(tmp_path: Path, fmt: str, language: str = "en", *extra: str) -> str:
    cfg = tmp_path / f"drill-{language}.yaml"
    cfg.write_text(CONFIG.format(language=language, state=tmp_path / "s", fallback=FALLBACK))
    proc = subprocess.run(
        [VAKTPOST, "drill", "-c", str(cfg), "--system", "social/case", "--format", fmt, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_json_has_the_fallback_and_the_text_each_event_would_send(tmp_path: Path) -> None:
    doc = json.loads(drill(tmp_path, "json"))
    assert doc["fallback"] == FALLBACK
    sent = [e for e in doc["events"] if e["kind"] in ("notify", "repeat")]
    assert [e["step"] for e in sent] == [0, 1]
    for event in sent:
        assert f"Fallback routine: {FALLBACK}" in event["text"], event
        # As `--send-to` sends it: marked, and no ack hint with the simulated id.
        assert event["text"].startswith("[DRILL] "), event
        assert "vaktpost ack" not in event["text"], event
    assert "RTO breached: start the fallback routine" in sent[1]["text"]
    swedish = json.loads(
        drill(tmp_path, "json", "sv", "--ack-after", "1h", "--recover-after", "3h")
    )["events"]
    texts = {e["kind"]: e["text"] for e in swedish}
    assert texts["acknowledged"].startswith("[ÖVNING]")
    assert texts["resolved"].startswith("[ÖVNING]")
    # Events that send nothing carry no text.
    breach = next(e for e in doc["events"] if e["kind"] == "rto_breached")
    assert breach["text"] is None


@pytest.mark.parametrize(("language", "heading"), [("en", "Fallback"), ("sv", "Reservrutin")])
def test_table_ends_with_the_fallback_block(tmp_path: Path, language: str, heading: str) -> None:
    out = drill(tmp_path, "table", language)
    lines = out.splitlines()
    assert f"{heading}:" in lines, out
    block = lines[lines.index(f"{heading}:") + 1 :]
    assert f"  {FALLBACK}" in block, out
    assert "notify" in out  # the timeline is still there, above the block
