"""Parts of the daemon beyond checks (alerting, readiness), started and stopped with it.

A component is built from the narrow `Host` (agent/host.py), listens to results
through the result book, is told about every accepted reload, and returns what
it contributes (`collectors()`); HTTP routes and pages live in agent/web/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from agent.config import Config


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def reload(self, config: Config) -> None: ...

    def collectors(self) -> list[Collector]: ...
