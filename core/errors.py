"""OS errors in the words people read."""

from __future__ import annotations

import os
import socket


def os_error_text(exc: OSError) -> str:
    """'connection refused' rather than "[Errno 111] Connect call failed ('10.0.0.1', 80)"."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):  # resolver codes are not errno values
        return f"cannot resolve the name: {(exc.strerror or str(exc)).lower()}"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__
