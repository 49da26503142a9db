"""`vaktpost status | ack | silence`: talk to a running agent."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from agent.cli.client import add_remote_arguments, request
from agent.cli.errors import Subparsers
from agent.cli.table import print_table


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="open incidents and department states of an agent")
    add_remote_arguments(status)
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.set_defaults(handler=cmd_status)

    ack = sub.add_parser("ack", help="acknowledge an incident")
    ack.add_argument("incident", type=_incident_id, metavar="INCIDENT_ID")
    add_remote_arguments(ack)
    ack.add_argument("--by")
    ack.add_argument("--comment", default="")
    ack.set_defaults(handler=cmd_ack)

    silence = sub.add_parser("silence", help="mute notifications for matching incidents")
    add_remote_arguments(silence)
    silence.add_argument("--match", action="append", required=True, metavar="KEY=GLOB")
    silence.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", type=_duration
    )
    silence.add_argument("--comment", default="")
    silence.add_argument("--by")
    silence.set_defaults(handler=cmd_silence)


def _incident_id(text: str) -> int:
    # int() takes ' 1' and '١' (Arabic-Indic one) as 1: an ack must name its incident exactly.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError("an incident id is a number, e.g. 12")
    return int(text)


def _duration(text: str) -> float:
    from core.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_status(args: argparse.Namespace) -> int:
    incidents = request(args, "GET", "/api/v1/incidents?state=open")["incidents"]
    if args.format == "json":
        print(json.dumps({"incidents": incidents}, indent=2, ensure_ascii=False))
        return 1 if incidents else 0
    from core.durations import format_duration

    if not incidents:
        print("no open incidents")
        return 0
    rows = [
        [
            str(i["id"]),
            f"{i['department'] or '-'}/{i['system']}",
            i["status"],
            format_duration(i["downtime_seconds"]),
            "" if i["current_step"] is None else str(i["current_step"]),
            i["next_step_due"] or "",
            i["acknowledged_by"] or "",
        ]
        for i in incidents
    ]
    print_table(["ID", "SYSTEM", "STATUS", "DOWN", "STEP", "NEXT STEP DUE", "ACKED BY"], rows)
    return 1


def cmd_ack(args: argparse.Namespace) -> int:
    body = {
        "by": args.by or args.user or getpass.getuser(),
        "comment": args.comment,
        "via": "cli",
    }
    incident = request(args, "POST", f"/api/v1/incidents/{args.incident}/ack", body)
    from core.redact import printable

    by = printable(str(incident["acknowledged_by"]))
    print(f"incident {incident['id']} acknowledged by {by}")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    matchers = {}
    for item in args.match:
        key, sep, glob = item.partition("=")
        if not sep or not key:
            print(f"--match {item!r}: use KEY=GLOB, e.g. check=treserva-*", file=sys.stderr)
            return 2
        matchers[key] = glob
    body = {
        "matchers": matchers,
        "duration_seconds": args.duration,
        "comment": args.comment,
        "created_by": args.by or args.user or getpass.getuser(),
    }
    silence = request(args, "POST", "/api/v1/silences", body)
    print(f"silence {silence['id']} until {silence['ends_at']}")
    return 0
