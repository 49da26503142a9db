"""`{phone}`, `{email}`, `{name}` filled from the person a notification is for."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from alerting.channels.command import CommandChannel, CommandChannelConfig
from alerting.channels.interface import PermanentError

# Stands in for the GSM modem's send tool: records its argv and the payload on stdin.
RECORDER = (
    "import json, sys; open(sys.argv[1], 'w').write(json.dumps([sys.argv[2:], sys.stdin.read()]))"
)


def channel(out: Path) -> CommandChannel:
    argv = (sys.executable, "-c", RECORDER, str(out), "{phone}", "to {name}")
    return CommandChannel("sms", CommandChannelConfig(type="command", argv=argv))


def test_argv_carries_the_recipients_number(tmp_path: Path) -> None:
    out = tmp_path / "sent.json"
    payload = {"text": "x", "recipient": {"id": "anna", "name": "Anna Lind", "phone": "+4670"}}
    asyncio.run(channel(out).send(payload))
    argv, stdin = json.loads(out.read_text())
    assert argv == ["+4670", "to Anna Lind"]
    assert json.loads(stdin)["recipient"]["id"] == "anna"


def test_a_missing_number_is_a_permanent_error_that_names_the_person(tmp_path: Path) -> None:
    out = tmp_path / "sent.json"
    with pytest.raises(PermanentError, match=r"needs \{phone\}, bertil has none"):
        asyncio.run(channel(out).send({"recipient": {"id": "bertil", "name": "Bertil"}}))
    with pytest.raises(PermanentError, match=r"needs \{phone\}: notify it as person:NAME"):
        asyncio.run(channel(out).send({"text": "no recipient"}))
    assert not out.exists()
