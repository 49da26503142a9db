"""`vaktpost oncall`: who is on duty in each rotation, now or at a given time."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.cli.errors import EXIT_USAGE, CliError, Subparsers
from agent.cli.table import print_table


def parse_at(text: str, timezone: str) -> float:
    """RFC 3339 (2026-12-24T08:00:00Z) or a local time in agent.timezone (2026-12-24T08:00)."""
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--at {text!r}: use 2026-12-24T08:00 (local) or 2026-12-24T07:00:00Z", EXIT_USAGE
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ZoneInfo(timezone))
    return stamp.timestamp()


def cmd_oncall(args: argparse.Namespace) -> int:
    from agent.configload import ConfigError, read_config
    from alerting.rotation import oncall_document
    from alerting.text import local_time

    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    tz = config.agent.timezone
    at = parse_at(args.at, tz) if args.at else time.time()
    doc = oncall_document(config.people, config.rotations, tz, at)
    if args.format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    rows = []
    for entry, rotation in zip(doc["rotations"], sorted(config.rotations), strict=True):
        until = datetime.fromisoformat(str(entry["until"]).replace("Z", "+00:00")).timestamp()
        rows.append(
            [rotation, entry["on_duty"]["name"], local_time(until, tz), entry["next"]["name"]]
        )
    if not rows:
        print("no rotations configured")
        return 0
    print_table(["ROTATION", "ON DUTY", "UNTIL", "NEXT"], rows)
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("oncall", help="who is on duty in each rotation, now or at --at")
    p.add_argument("-c", "--config", help="config file (default: the embedded default)")
    p.add_argument("--at", help="a time: 2026-12-24T08:00 (agent.timezone) or RFC 3339")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=cmd_oncall)
