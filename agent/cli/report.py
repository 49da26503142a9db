"""`vaktpost report`: the monthly continuity report from the daemon's state store
(the fleet's PostgreSQL when agent.store is set, else SQLite under state_dir)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, Subparsers

if TYPE_CHECKING:
    from agent.config import Config
    from agent.state.interface import IncidentSpan

    Evidence = tuple[
        list[IncidentSpan], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
    ]


def collect(config: Config, month: str, department: str | None, now: float) -> dict[str, Any]:
    """The month's report from the store agent.store names: the fleet's PostgreSQL,
    else the agent's SQLite under state_dir."""
    from agent import report

    first = report.parse_month(month)
    start, end = report.month_bounds(first, config.agent.timezone)
    if config.agent.store is None:
        spans, changes, restores, drills = _read_sqlite(config, start, end)
    else:
        import asyncio

        spans, changes, restores, drills = asyncio.run(_read_shared(config, start, end))
    drills.sort(key=lambda d: str(d["sent_at"]))
    return report.build_report(config, first, spans, changes, now, department, drills, restores)


def _read_sqlite(config: Config, start: float, end: float) -> Evidence:
    from agent.state.sqlite import Store
    from agent.state.sqlite_history import check_changes_sync, restore_tests_sync, spans_sync
    from alerting.drills import DRILL_STATE_KEY, check_name

    store = Store(config.agent.state_dir)
    store.open_sync()
    try:
        spans = store.call_sync(lambda db: spans_sync(db, start, end))
        changes = store.call_sync(lambda db: check_changes_sync(db, None, start, end))
        restores = store.call_sync(lambda db: restore_tests_sync(db, start, end))
        states = {
            drill.name: store.get_state_sync(check_name(drill.name), DRILL_STATE_KEY)
            for drill in config.drills
        }
    finally:
        store.close_sync()
    return spans, changes, restores, _drill_runs(states, start, end)


async def _read_shared(config: Config, start: float, end: float) -> Evidence:
    import psycopg

    from agent.state.fleet import build_store
    from agent.state.pg_history import PostgresHistory
    from agent.state.postgres import PostgresStore
    from agent.state.postgres_errors import PostgresStoreError
    from alerting.drills import DRILL_STATE_KEY, check_name

    store = build_store(config.agent)  # the password as the daemon reads it
    assert isinstance(store, PostgresStore)
    await _same_schema(config, store.where)
    await store.open()
    try:
        history = PostgresHistory(store)
        spans = await history.spans(start, end)
        changes = await history.check_changes(None, start, end)
        restores = await history.restore_tests(start, end)
        states = {
            drill.name: await store.get_state(check_name(drill.name), DRILL_STATE_KEY)
            for drill in config.drills
        }
    except psycopg.Error as exc:  # in one line: the store went away mid-read
        text = str(exc).strip().splitlines()
        raise PostgresStoreError(
            f"state store {store.where}: {text[0] if text else type(exc).__name__}"
        ) from None
    finally:
        await store.close()
    return spans, changes, restores, _drill_runs(states, start, end)


async def _same_schema(config: Config, where: str) -> None:
    """A report only reads: opening the store must not migrate the fleet's schema
    (the agents that run on it would then refuse to start)."""
    import psycopg

    from agent.state.migrate import MigrateError, connect
    from agent.state.postgres import MIGRATIONS, read_password_file, schema_version
    from agent.state.postgres_errors import PostgresStoreError

    agent = config.agent
    assert agent.store is not None
    password = None
    if agent.store_password_file is not None:
        password = read_password_file(agent.store_password_file)
    try:
        conn = await connect(agent.store, password)
    except MigrateError as exc:
        raise PostgresStoreError(str(exc)) from None
    try:
        version = await schema_version(conn)
    except psycopg.errors.UndefinedTable:
        version = 0
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()
        raise PostgresStoreError(f"state store {where}: {text[0] if text else exc}") from None
    finally:
        await conn.close()
    if version != len(MIGRATIONS):
        raise PostgresStoreError(
            f"state store {where} has schema version {version}, this vaktpost reads"
            f" {len(MIGRATIONS)}: run the report with the agents' vaktpost"
        )


def _drill_runs(states: dict[str, Any], start: float, end: float) -> list[dict[str, Any]]:
    from alerting.drills import DrillState

    return [
        run.document()
        for state in states.values()
        for run in DrillState.from_json(state).runs
        if start <= run.sent_at < end
    ]


def cmd_report(args: argparse.Namespace) -> int:
    from agent import report_render
    from agent.configload import ConfigError, read_config
    from agent.state.postgres_errors import PostgresStoreError
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
    except (StoreError, PostgresStoreError, OSError) as exc:
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
