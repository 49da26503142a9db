"""What every command shares: one-line errors and their exit codes."""

from __future__ import annotations

import argparse
import typing

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


Subparsers = argparse._SubParsersAction
