"""The narrow host interface a component is built from (not the whole daemon).

A component (alerting, readiness) gets the config, the results, the store and
the runtime through this, and contributes collectors and department extras by
returning them; it never reaches into the daemon, and the web layer on top reads
components only through their own APIs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agent.config import Config
    from agent.results import ResultBook
    from agent.runtime import Runtime
    from agent.state.postgres import PostgresStore
    from agent.state.sqlite import Store
    from checks.base import CheckContext


class Host(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def book(self) -> ResultBook: ...

    @property
    def store(self) -> Store: ...

    @property
    def shared_store(self) -> PostgresStore | None: ...  # a fleet's store (agent.store)

    @property
    def ctx(self) -> CheckContext: ...

    @property
    def runtime(self) -> Runtime: ...
