"""Parts of the daemon beyond checks (alerting, readiness ...), started and stopped with it.

A component gets the Agent, may add HTTP routes, Prometheus collectors and
status-page sections, listens to results through `agent.book.listeners`, and is
told about every accepted reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from agent.config import Config
    from agent.daemon import Agent


class Component(Protocol):
    routes: list[web.RouteDef]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def reload(self, config: Config) -> None: ...


def build_components(agent: Agent) -> list[Component]:
    """The one place that lists components, in start order (stopped in reverse)."""
    from agent.alerting_component import AlertingComponent
    from agent.readiness_component import ReadinessComponent
    from agent.signals_component import SignalsComponent

    return [AlertingComponent(agent), ReadinessComponent(agent), SignalsComponent(agent)]
