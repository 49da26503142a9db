"""The latest result of every check and the counters the incident engine builds on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from checks.base import CheckConfig, CheckResult
from core.status import Status

# A failing probe: one the runtime re-judges against its dependencies' fresh verdicts.
FAILING = frozenset({Status.CRITICAL, Status.UNKNOWN})
# A dependency in one of these makes a failing dependent `unreachable`.
DEPENDENCY_DOWN = frozenset({Status.CRITICAL, Status.UNREACHABLE})


@dataclass(slots=True)
class CheckState:
    config: CheckConfig
    result: CheckResult | None = None
    runs: dict[Status, int] = field(default_factory=dict)
    # Rendered exposition lines per metric family, rebuilt on each result so a
    # scrape only joins strings (see agent/metrics.py).
    rendered: dict[str, str] = field(default_factory=dict)
    rendered_key: object = None  # what `rendered` shows (see CheckExposition.render)
    # In a fleet: the agent that ran `result` ("" until someone has).
    agent: str = ""

    def record(self, result: CheckResult) -> None:
        # Failures in a row (failures_before_alert) are the incident engine's to count
        # (alerting/engine.py CheckTrack): one counter, which /metrics shows too.
        self.result = result
        self.runs[result.status] = self.runs.get(result.status, 0) + 1


Listener = Callable[[CheckState], None]


class ResultBook:
    """Owned by the runtime; everyone else reads it or listens to it."""

    def __init__(self) -> None:
        self.states: dict[str, CheckState] = {}
        self.listeners: list[Listener] = []
        self.agent = ""  # this agent's name, for the results it runs itself

    def configure(self, checks: tuple[CheckConfig, ...]) -> None:
        """Keep the history of checks whose config is unchanged; forget removed ones."""
        old = self.states
        self.states = {}
        for config in checks:
            previous = old.get(config.name)
            if previous is not None and previous.config == config:
                self.states[config.name] = previous
            else:
                state = CheckState(config)
                if previous is not None and previous.config.type == config.type:
                    state.result = previous.result
                    state.runs = previous.runs
                    state.agent = previous.agent
                self.states[config.name] = state

    def record(self, name: str, result: CheckResult) -> CheckState | None:
        state = self.states.get(name)
        if state is None:  # removed by a reload while it ran
            return None
        state.record(result)
        state.agent = self.agent
        for listener in self.listeners:
            listener(state)
        return state

    def absorb(self, name: str, result: CheckResult, agent: str) -> CheckState | None:
        """A result another agent of the fleet ran, read from the shared store.

        Shown (API, metrics, page, readiness) but not counted or passed to the
        listeners: the engine holder reads it from the store itself, and history
        and persistence belong to the agent that ran it.
        """
        state = self.states.get(name)
        if state is None:
            return None
        state.result = result
        state.agent = agent
        return state

    def status_of(self, name: str) -> Status | None:
        state = self.states.get(name)
        return state.result.status if state and state.result else None
