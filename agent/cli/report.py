"""`vaktpost report`: the monthly continuity report from the daemon's state store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, Subparsers

if TYPE_CHECKING:
    from agent.config import Config


def collect(config: Config, month: str, department: str | None, now: float) -> dict[str, Any]:
    from agent import report
    from agent.state.sqlite import Store
    from agent.state.sqlite_history import check_changes_sync, restore_tests_sync, spans_sync
    from alerting.drills import DRILL_STATE_KEY, DrillState, check_name

    first = report.parse_month(month)
    start, end = report.month_bounds(first, config.agent.timezone)
    store = Store(config.agent.state_dir)
    store.open_sync()
    try:
        spans = store.call_sync(lambda db: spans_sync(db, start, end))
        changes = store.call_sync(lambda db: check_changes_sync(db, None, start, end))
        restores = store.call_sync(lambda db: restore_tests_sync(db, start, end))
        drills = [
            run.document()
            for drill in config.drills
            for run in DrillState.from_json(
                store.get_state_sync(check_name(drill.name), DRILL_STATE_KEY)
            ).runs
            if start <= run.sent_at < end
        ]
    finally:
        store.close_sync()
    drills.sort(key=lambda d: str(d["sent_at"]))
    return report.build_report(config, first, spans, changes, now, department, drills, restores)


def cmd_report(args: argparse.Namespace) -> int:
    from agent import report_render
    from agent.configload import ConfigError, read_config
    from agent.state.sqlite import StoreError

    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.department and args.department not in {d.id for d in config.departments}:
        print(f"unknown department: {args.department}", file=sys.stderr)
        return EXIT_USAGE
    try:
        doc = collect(config, args.month, args.department, time.time())
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, OSError) as exc:
        print(f"cannot read the state store: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "html":
        sys.stdout.write(report_render.html_page(doc))
    else:
        sys.stdout.write(report_render.markdown(doc))
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("report", help="the monthly continuity report (docs/report.md)")
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--month", required=True, metavar="YYYY-MM")
    parser.add_argument("--department", metavar="ID", help="only this department")
    parser.add_argument("--format", choices=["html", "json", "md"], default="md")
    parser.set_defaults(handler=cmd_report)
