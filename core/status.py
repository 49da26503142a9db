"""Statuses and their order of badness (DESIGN.md)."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """Values are the `check_status` metric encoding of DESIGN.md."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3
    UNREACHABLE = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def badness(self) -> int:
        """ok < warning < unreachable < unknown < critical."""
        return _BADNESS[self]

    @property
    def exit_code(self) -> int:
        return {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2}.get(self, 3)

    @classmethod
    def parse(cls, text: str) -> Status:
        return cls[text.upper()]


_BADNESS = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.UNREACHABLE: 2,
    Status.UNKNOWN: 3,
    Status.CRITICAL: 4,
}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: s.badness, default=Status.OK)
