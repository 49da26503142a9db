"""Files a config names that must be there when the agent starts: secrets, keys, certificates.

Every `*_file` key is one (agent.web's tls_cert_file/tls_key_file, password_file,
token_file, hmac_secret_file, a tls `ca_file`, ...), except the files a check
watches, which a backup job may write later. `vaktpost validate` looks, as the
user it runs as (systemd's ExecStartPre runs it as the agent's user); paths are
taken as the agent takes them, relative to the working directory. Messages name
the key, never the value: a secret pasted where its path belongs stays unprinted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.yamlsource import LocDict, LocList, Problem

# Watched by a check (backup_files verifies against it), not needed at start.
_WATCHED = frozenset({"checksum_file"})


def missing_files(root: LocDict) -> list[Problem]:
    problems: list[Problem] = []
    _walk(root, (), problems)
    return problems


def _walk(node: Any, path: tuple[Any, ...], problems: list[Problem]) -> None:
    if isinstance(node, LocDict):
        for key, value in node.items():
            where = (*path, key)
            if isinstance(key, str) and key.endswith("_file") and key not in _WATCHED:
                if isinstance(value, str):
                    reason = file_problem(value)
                    if reason:
                        problems.append(Problem(node.key_locs[key], _text(where), reason))
            else:
                _walk(value, where, problems)
    elif isinstance(node, LocList):
        for i, item in enumerate(node):
            _walk(item, (*path, i), problems)


def file_problem(value: str) -> str | None:
    """Why the agent could not read this file, in words that do not repeat the value."""
    path = Path(value)
    try:
        if not path.exists():
            return "file not found"
        if not path.is_file():
            return "not a file"
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file either
        return "file not found"
    if not os.access(path, os.R_OK):
        return "not readable"
    return None


def _text(path: tuple[Any, ...]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
