"""`vaktpost run | validate | check`: the daemon, a config check, one round of checks."""

from __future__ import annotations

import argparse
import json
import sys

from agent.cli.errors import EXIT_CANNOT_RUN, CliError, Subparsers
from agent.cli.table import print_table


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from agent import logs
    from agent.configload import ConfigError, read_config
    from agent.daemon import serve

    logs.setup(args.log_level)
    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return asyncio.run(serve(config, args.config))


def cmd_validate(args: argparse.Namespace) -> int:
    from agent.configload import ConfigError, read_config
    from agent.yamlsource import Problem

    warnings: list[Problem] = []
    try:
        config = read_config(args.config, check_files=True, warnings=warnings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in warnings:  # valid, so the exit code stays 0
        print(warning, file=sys.stderr)
    print(
        f"{args.config or '<default>'}: ok ({len(config.checks)} checks, "
        f"{len(config.channels)} channels, {len(config.departments)} departments)"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from agent.configload import ConfigError, read_config
    from agent.results import ResultBook
    from agent.runtime import Runtime
    from agent.state.sqlite import Store, StoreError
    from checks.base import CheckContext
    from core.errors import os_error_text
    from core.status import worst

    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CANNOT_RUN  # not 1: that would read as "a check is warning"
    known = {c.name for c in config.checks}
    missing = [n for n in args.names if n not in known]
    if missing:
        print(f"unknown check: {', '.join(missing)}", file=sys.stderr)
        return 3
    book = ResultBook()

    async def run() -> None:
        # The daemon's store, so verification times recorded here count for it too.
        store = Store(config.agent.state_dir)
        await store.open()
        try:
            ctx = CheckContext(
                Path(config.agent.state_dir),
                config.agent.name,
                store=store,
                timezone=config.agent.timezone,
            )
            runtime = Runtime(book, ctx, config.agent.max_concurrency)
            runtime.apply(config.checks)
            try:
                await runtime.run_once(args.names or None)
            finally:
                await runtime.close()
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except StoreError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"state store in {config.agent.state_dir}: {os_error_text(exc)}") from None
    selected = [s for s in book.states.values() if not args.names or s.config.name in args.names]
    results = [(s.config, s.result) for s in selected if s.result is not None]
    overall = worst([r.status for _, r in results])
    if args.format == "json":
        doc = {
            "worst": overall.label,
            "results": [r.to_json(c.name, c.type) for c, r in results],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_table(
            ["NAME", "TYPE", "STATUS", "TIME", "MESSAGE"],
            [
                [c.name, c.type, r.status.label, f"{r.duration_seconds:.3f}s", r.message]
                for c, r in results
            ],
        )
    return overall.exit_code


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", help="config file (default: the embedded default)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(handler=cmd_run)

    validate = sub.add_parser("validate", help="validate a config file")
    validate.add_argument("-c", "--config", help="config file (default: the embedded default)")
    validate.set_defaults(handler=cmd_validate)

    check = sub.add_parser("check", help="run checks once and print the results")
    check.add_argument("-c", "--config", required=True)
    check.add_argument("names", nargs="*", metavar="NAME")
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.set_defaults(handler=cmd_check)
