"""`vaktpost store migrate`: move a single agent's SQLite state into a shared store."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, CliError, Subparsers

if TYPE_CHECKING:
    from agent.config import Config


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    store = sub.add_parser("store", help="the agent's state store")
    actions = store.add_subparsers(dest="action", required=True)
    move = actions.add_parser(
        "migrate",
        help="move this agent's SQLite state (incidents, clocks, queue, silences) into"
        " a shared PostgreSQL store",
    )
    move.add_argument("-c", "--config", required=True, help="the agent's config file")
    move.add_argument(
        "--to",
        metavar="URL",
        help="postgresql://USER@HOST/DB (default: the config's agent.store)",
    )
    move.add_argument(
        "--password-file",
        help="the database password (default: agent.store_password_file, PGPASSWORD, ~/.pgpass)",
    )
    move.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the state a target already holds (never while agents run on it)",
    )
    move.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from agent.configload import ConfigError, read_config
    from agent.state.migrate import MigrateError

    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CANNOT_RUN
    target = args.to or config.agent.store
    if not target:
        raise CliError(
            "no target: give --to postgresql://... (the config has no agent.store)", EXIT_USAGE
        )
    if not target.startswith(("postgresql://", "postgres://")):
        raise CliError("--to: a postgresql:// URL", EXIT_USAGE)
    from psycopg.conninfo import conninfo_to_dict

    try:
        has_password = "password" in conninfo_to_dict(target)
    except Exception:
        raise CliError("--to: not a PostgreSQL URL libpq can read", EXIT_USAGE) from None
    if has_password:
        raise CliError("--to must not carry a password: use --password-file", EXIT_USAGE)
    try:
        summary = asyncio.run(_migrate(config, target, args))
    except MigrateError as exc:
        raise CliError(str(exc)) from None
    print(summary)
    return 0


async def _migrate(config: Config, target: str, args: argparse.Namespace) -> str:
    from agent.state.migrate import MigrateError, SqliteSource, connect, copy_into
    from agent.state.postgres import read_password_file, redacted
    from agent.state.postgres_errors import PostgresStoreError

    agent = config.agent
    password_file = args.password_file or agent.store_password_file
    password = None
    if password_file is not None:
        try:
            password = read_password_file(password_file)
        except PostgresStoreError as exc:
            raise MigrateError(str(exc)) from None
    with SqliteSource(agent.state_dir) as source:
        state = source.read()
        conn = await connect(target, password)
        try:
            await copy_into(conn, state, agent.name, args.replace)
        finally:
            await conn.close()
    moved = ", ".join(
        [
            f"{state.count('incidents')} incidents ({state.open_incidents()} open)",
            f"{state.count('incident_events')} timeline events",
            f"{state.count('outbox')} outbox rows",
            f"{state.count('silences')} silences",
            f"{state.count('check_results')} check results",
            f"{state.count('check_state')} check states",
            f"{state.count('check_history')} status changes",
            f"{state.count('audit_log')} audit entries",
            f"{state.count('restore_tests')} restore tests",
        ]
    )
    return (
        f"moved {moved} from {state.path} to {redacted(target)}."
        " Set agent.store to the target and start the agent."
    )
