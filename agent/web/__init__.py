"""The web layer: every HTTP route, the auth, every HTML page. It sits on top:
it calls the engine, the readiness report and the daemon through agent.web.host,
and nothing below imports it."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `from agent.web import build_app` keeps working without the package importing
    # its routes up front (the CLI imports agent.web.readiness_render alone).
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("agent.web.app"), name)
