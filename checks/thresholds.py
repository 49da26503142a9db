"""Threshold grading shared by the resource checks."""

from __future__ import annotations

from core.status import Status


def grade(value: float, warn: float | None, crit: float | None) -> Status:
    """Higher is worse: at or above `crit` is critical, at or above `warn` warning."""
    if crit is not None and value >= crit:
        return Status.CRITICAL
    if warn is not None and value >= warn:
        return Status.WARNING
    return Status.OK
