"""The `vaktpost` command line.

Each command lives in one module of this package and imports what it needs
when it runs, so `vaktpost --help` and `vaktpost validate` start quickly (a CLI
is run by people and by cron). Errors are one line: exit 2 for usage, 3 when
the command cannot do its work (agent/cli/errors.py).
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable

from agent import __version__
from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, CliError, OneLineParser, Subparsers

if typing.TYPE_CHECKING:
    import argparse

Handler = Callable[["argparse.Namespace"], int]


def build_parser() -> argparse.ArgumentParser:
    from agent.cli import drill, local, people, readiness, remote

    parser = OneLineParser(
        prog="vaktpost", description="Monitoring agent for municipal continuity."
    )
    parser.add_argument("--version", action="version", version=f"vaktpost {__version__}")
    sub = typing.cast(
        "Subparsers[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser),
    )
    for register in (
        local.register,
        readiness.register,
        drill.register,
        remote.register,
        people.register,
    ):
        register(sub)
    from agent.cli import fleet, incident, report, sms, store

    incident.register(sub)

    report.register(sub)
    sms.register(sub)
    fleet.register(sub)
    store.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.redact import printable, redact_text

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


__all__ = ["EXIT_CANNOT_RUN", "EXIT_USAGE", "CliError", "build_parser", "main"]
