"""The `vaktpost` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path

from agent import __version__, logs
from agent.configload import ConfigError
from agent.daemon import read_config, serve
from agent.results import ResultBook
from agent.runtime import Runtime
from agent.yamlsource import Problem
from alerting.store import Store, StoreError
from checks.base import CheckContext, Status, os_error_text, worst
from checks.redact import printable, redact_text

Handler = Callable[[argparse.Namespace], int]
# Exit codes of errors (`check` uses 0-3 for statuses; there 3 also means "could not tell").
EXIT_USAGE = 2  # a bad argument: the command line must change
EXIT_CANNOT_RUN = 3  # the command could not do its work: config, state store, agent


class CliError(Exception):
    """An error the user can act on: printed as one line, exit `code`."""

    def __init__(self, message: str, code: int = EXIT_CANNOT_RUN) -> None:
        super().__init__(message)
        self.code = code


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (`vaktpost ack: argument INCIDENT_ID: ...`), exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def cmd_run(args: argparse.Namespace) -> int:
    logs.setup(args.log_level)
    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return asyncio.run(serve(config, args.config))


def cmd_validate(args: argparse.Namespace) -> int:
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


def print_table(header: list[str], rows: list[list[str]]) -> None:
    # Cells come from the agent and from probes (an ack's `by`, a plugin's output):
    # an escape sequence in one must not drive the terminal, nor a newline break the table.
    rows = [[printable(str(v)) for v in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(v).ljust(w) for v, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="vaktpost", description="Monitoring agent for municipal continuity."
    )
    parser.add_argument("--version", action="version", version=f"vaktpost {__version__}")
    sub = typing.cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser),
    )

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

    for register in extra_commands():
        register(sub)
    return parser


def extra_commands() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Commands of other parts (readiness, drill, status, ack, silence)."""
    from agent import cli_alerting, cli_readiness

    return [cli_readiness.register, cli_alerting.register]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CliError as exc:
        print(f"vaktpost {args.command}: {printable(redact_text(str(exc)))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback: one line that says what failed
        reason = printable(redact_text(f"{type(exc).__name__}: {exc}"))
        print(f"vaktpost {args.command}: cannot run: {reason}", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    # Through the module, not this __main__ copy: its CliError is the one commands raise.
    from agent.cli import main as module_main

    sys.exit(module_main())


__all__ = ["EXIT_CANNOT_RUN", "EXIT_USAGE", "CliError", "Status", "main"]
