"""`vaktpost fleet status`: the agents of a fleet as one running agent sees them."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from agent.cli.client import add_remote_arguments, request
from agent.cli.errors import Subparsers
from agent.cli.table import print_table


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    fleet = sub.add_parser("fleet", help="the agents sharing this agent's state store")
    actions = fleet.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="agents, the engine holder, the store")
    add_remote_arguments(status)
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    doc: dict[str, Any] = request(args, "GET", "/api/v1/fleet")
    if args.format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    store = doc["store"]
    where = f" {store['where']}" if store.get("where") else ""
    print(f"store: {store['kind']}{where} ({'up' if store['up'] else 'DOWN'})")
    print(f"engine holder: {doc['engine']['holder'] or '(none)'}")
    now = time.time()
    rows = [
        [
            a["name"] + (" *" if a["self"] else ""),
            "up" if a["live"] else "LAPSED",
            a["version"],
            a["config_hash"] + ("" if a["config_matches"] else " (differs)"),
            str(a["checks_assigned"]),
            f"{max(0.0, now - a['last_seen']):.0f}s ago",
            "holder" if a["engine"] else "",
        ]
        for a in doc["agents"]
    ]
    print_table(["AGENT", "STATE", "VERSION", "CONFIG", "CHECKS", "SEEN", "ENGINE"], rows)
    for problem in doc["problems"]:
        print(f"problem: {problem}")
    # A fleet with problems is a failing status for scripts and monitoring.
    return 1 if doc["problems"] else 0
