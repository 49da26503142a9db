"""`vaktpost sms-received`: an SMS daemon's event hook hands a reply to the agent.

gammu-smsd's RunOnReceive sets SMS_MESSAGES=N and SMS_1_NUMBER, SMS_1_TEXT ...
SMS_N_TEXT (gammu-smsd-run(7)); each is handed over on its own. smstools3 calls
its eventhandler with `RECEIVED FILE`: the file's `From:` header and the text
after the blank line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from agent.cli.client import add_remote_arguments, request
from agent.cli.errors import EXIT_USAGE, CliError, Subparsers

MAX_MESSAGES = 50


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "sms-received",
        help="hand a received SMS (gammu-smsd RunOnReceive, smstools3) to the agent",
    )
    add_remote_arguments(cmd)
    cmd.add_argument("--from", dest="sender", metavar="NUMBER")
    cmd.add_argument("--text")
    cmd.add_argument("event", nargs="*", help="smstools3 eventhandler arguments: RECEIVED FILE")
    cmd.set_defaults(handler=cmd_sms_received)


def gammu_messages(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(number, text) of each message in a RunOnReceive environment."""
    raw = env.get("SMS_MESSAGES", "").strip()
    if not raw.isdigit():
        return []
    found = []
    for n in range(1, min(int(raw), MAX_MESSAGES) + 1):
        number, text = env.get(f"SMS_{n}_NUMBER", ""), env.get(f"SMS_{n}_TEXT", "")
        if number and text:
            found.append((number, text))
    return found


def smstools_message(path: Path) -> tuple[str, str]:
    """(From:, body) of an smstools3 received file: headers, a blank line, the text."""
    content = path.read_text(encoding="utf-8", errors="replace")
    head, _, body = content.partition("\n\n")
    sender = ""
    for line in head.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "from":
            sender = value.strip()
    if sender and not sender.startswith("+") and sender.isdigit():
        sender = "+" + sender  # smstools3 writes international numbers without the plus
    return sender, body.strip()


def _messages(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.sender is not None or args.text is not None:
        if not args.sender or not args.text:
            raise CliError("give both --from NUMBER and --text TEXT", EXIT_USAGE)
        return [(args.sender, args.text)]
    if args.event:
        if args.event[0] != "RECEIVED":
            return []  # SENT, FAILED, REPORT ...: nothing to acknowledge
        if len(args.event) < 2:
            raise CliError("smstools3 event RECEIVED without a file", EXIT_USAGE)
        try:
            return [smstools_message(Path(args.event[1]))]
        except OSError as exc:
            raise CliError(f"cannot read {args.event[1]}: {exc.strerror}") from None
    messages = gammu_messages(os.environ)
    if not messages:
        raise CliError(
            "no message: give --from and --text, or run from gammu-smsd RunOnReceive"
            " (SMS_MESSAGES, SMS_1_NUMBER, SMS_1_TEXT)",
            EXIT_USAGE,
        )
    return messages


def cmd_sms_received(args: argparse.Namespace) -> int:
    from core.redact import printable

    for number, text in _messages(args):
        answer = request(args, "POST", "/api/v1/ack-code", {"code": text, "from": number})
        word = "acknowledged" if answer.get("acknowledged") else "ignored"
        print(f"{printable(number)}: {word}: {printable(str(answer.get('message', '')))}")
    sys.stdout.flush()
    return 0
