"""pytest's hooks for the whole suite. Helpers live in tests/helpers.py; the names
below are re-exported for tests written when they lived here."""

from __future__ import annotations

from tests.helpers import ROOT, VAKTPOST, free_port, require_binary, wait_until

__all__ = ["ROOT", "VAKTPOST", "free_port", "require_binary", "wait_until"]
