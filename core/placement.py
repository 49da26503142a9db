"""Where work runs in a fleet: `run_on` globs and rendezvous hashing.

Pure functions of names, so every agent that sees the same live members reaches
the same answer without asking anyone (no coordinator, nothing to elect).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Sequence
from typing import Annotated

from pydantic import AfterValidator


def _agent_glob(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty glob matches no agent: leave run_on out to allow any agent")
    return value


# One entry of a check's or a channel's `run_on`.
AgentGlob = Annotated[str, AfterValidator(_agent_glob)]


def may_run(run_on: Sequence[str], agent: str) -> bool:
    """An empty `run_on` means any agent; otherwise a glob must match its name."""
    return not run_on or any(fnmatch.fnmatchcase(agent, pattern) for pattern in run_on)


def weight(key: str, agent: str) -> int:
    # blake2b is in hashlib everywhere and stable across processes (hash() is not).
    digest = hashlib.blake2b(f"{key}\0{agent}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, run_on: Sequence[str], live: Iterable[str]) -> str | None:
    """The live agent that runs `key`: the highest weight among those `run_on` allows.

    When an agent lapses only the keys it owned move (each to its own next-highest
    agent); when one joins it takes only the keys it now weighs highest for.
    """
    best: tuple[int, str] | None = None
    for agent in live:
        if may_run(run_on, agent):
            candidate = (weight(key, agent), agent)
            if best is None or candidate > best:
                best = candidate
    return None if best is None else best[1]
