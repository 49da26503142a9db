"""What the web layer reads and calls: the daemon as seen from the top.

The daemon (agent/daemon.py) satisfies this; the web layer never imports the
daemon, and nothing below the web layer imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent.alerting_component import AlertingComponent
    from agent.config import Config
    from agent.fleet_component import FleetComponent
    from agent.history_component import HistoryComponent
    from agent.metrics import AgentMetrics
    from agent.readiness_component import ReadinessComponent
    from agent.results import ResultBook
    from agent.runtime import Runtime
    from checks.base import CheckContext


class WebHost(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def book(self) -> ResultBook: ...

    @property
    def ctx(self) -> CheckContext: ...

    @property
    def runtime(self) -> Runtime: ...

    @property
    def metrics(self) -> AgentMetrics: ...

    @property
    def alerting(self) -> AlertingComponent: ...

    @property
    def readiness(self) -> ReadinessComponent: ...

    @property
    def history(self) -> HistoryComponent: ...

    @property
    def fleet(self) -> FleetComponent: ...

    async def fresh_view(self) -> None: ...

    def readiness_problems(self) -> list[str]: ...

    def check_results_json(self) -> list[dict[str, Any]]: ...

    async def reload(self) -> tuple[bool, list[str]]: ...

    async def reload_by(self, actor: str) -> tuple[bool, list[str]]: ...
