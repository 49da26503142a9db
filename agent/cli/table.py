"""The one table printer of every command."""

from __future__ import annotations

from core.redact import printable


def print_table(header: list[str], rows: list[list[str]]) -> None:
    # Cells come from the agent and from probes (an ack's `by`, a plugin's output):
    # an escape sequence in one must not drive the terminal, nor a newline break the table.
    rows = [[printable(str(v)) for v in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(v).ljust(w) for v, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))
