"""/metrics: check metrics rendered from the result book, plus a small registry.

At 10,000 checks the check families hold ~60,000 samples. prometheus_client
spends microseconds per sample, so these are rendered here as text: each check's
lines are rebuilt only when its result changed, and a scrape joins strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from agent import __version__
from agent.results import CheckState, ResultBook
from checks.command import perfdata_of
from checks.registry import CHECK_TYPES
from core.status import Status

PREFIX = "vaktpost_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_CORE = [
    ("check_up", "gauge", "1 if the last probe passed (ok or warning), else 0."),
    (
        "check_status",
        "gauge",
        "Last status: 0 ok, 1 warning, 2 critical, 3 unknown, 4 unreachable.",
    ),
    ("check_duration_seconds", "gauge", "How long the last probe took."),
    ("check_last_run_timestamp_seconds", "gauge", "When the last probe finished (unix time)."),
    ("check_runs_total", "counter", "Probes run, by resulting status."),
    (
        "check_consecutive_failures",
        "gauge",
        "Down results in a row (critical, unknown or unreachable) as the incident engine"
        " counts them for failures_before_alert, up to that number.",
    ),
    ("check_agent", "gauge", "1 for the agent of the fleet that ran the check's last probe."),
]


_CORE_NAMES = frozenset(name for name, _kind, _help in _CORE)
# command checks: each perfdata value of the plugin's last output, in its own unit.
_PERFDATA = (
    "check_perfdata",
    "gauge",
    "Perfdata of a command check's last output, in the plugin's unit (label unit).",
)


def fact_families() -> dict[str, str]:
    """metric name -> help, from every check type's `metric_facts`."""
    out: dict[str, str] = {}
    for check_type in CHECK_TYPES.values():
        for fact, metric in check_type.config.metric_facts.items():
            out.setdefault(metric, f"Fact {fact!r} of {check_type.name} checks.")
    return out


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v)) + ".0"


def _escape(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _line(metric: str, labels: str, value: float) -> str:
    return f"{PREFIX}{metric}{{{labels}}} {_value(value)}\n"


def render_state(state: CheckState, failures: int | None = None) -> dict[str, str]:
    result = state.result
    if result is None:
        return {}
    name = _escape(state.config.name)
    ct = f'check="{name}",type="{_escape(state.config.type)}"'
    up = 1.0 if result.status in (Status.OK, Status.WARNING) else 0.0
    by_check = f'check="{name}"'
    runs = "".join(
        f'{PREFIX}check_runs_total{{{by_check},status="{s.label}"}} {_value(n)}\n'
        for s, n in sorted(state.runs.items())
    )
    out = {
        "check_up": _line("check_up", ct, up),
        "check_status": _line("check_status", ct, result.status.value),
        "check_duration_seconds": _line("check_duration_seconds", ct, result.duration_seconds),
        "check_last_run_timestamp_seconds": _line(
            "check_last_run_timestamp_seconds", by_check, result.finished_at
        ),
        "check_runs_total": runs,
    }
    if failures is not None:
        out["check_consecutive_failures"] = _line("check_consecutive_failures", by_check, failures)
    if state.agent:  # in a fleet (alone the book leaves it empty: no line per check)
        out["check_agent"] = _line("check_agent", f'{by_check},agent="{_escape(state.agent)}"', 1)
    for fact, metric in state.config.metric_facts.items():
        if fact in result.facts:
            out[metric] = _line(metric, by_check, result.facts[fact])
    if perf := perfdata_of(result):
        out["check_perfdata"] = "".join(
            _line(
                "check_perfdata",
                f'{by_check},label="{_escape(p.label)}",unit="{_escape(p.unit)}"',
                p.value,
            )
            for p in perf
        )
    return out


class CheckExposition:
    def __init__(self, book: ResultBook) -> None:
        self.book = book
        # The incident engine's count of down results in a row (the one counter);
        # None where no engine runs (a fleet agent that does not hold the lease).
        self.failures: Callable[[str], int | None] = lambda _name: None
        self.families = [
            *_CORE,
            *[(n, "gauge", h) for n, h in fact_families().items()],
            _PERFDATA,
        ]
        # Which checks can emit each fact family: most families belong to one check
        # type, and walking all 10,000 checks for each of ~28 families cost 30 ms a
        # scrape. Rebuilt when the book is reconfigured (it then holds a new dict).
        self._members: dict[str, list[CheckState]] = {}
        self._members_of: object = None

    def _fact_members(self) -> dict[str, list[CheckState]]:
        if self._members_of is not self.book.states:
            members: dict[str, list[CheckState]] = {}
            for state in self.book.states.values():
                for metric in state.config.metric_facts.values():
                    members.setdefault(metric, []).append(state)
                if state.config.has_perfdata:
                    members.setdefault(_PERFDATA[0], []).append(state)
            self._members, self._members_of = members, self.book.states
        return self._members

    def render(self) -> str:
        states = list(self.book.states.values())
        failures_of = self.failures
        for state in states:
            failures = failures_of(state.config.name)
            key = (state.result, failures, state.agent)
            if state.rendered_key != key:
                state.rendered = render_state(state, failures)
                state.rendered_key = key
        members = self._fact_members()
        parts: list[str] = []
        for name, kind, help_text in self.families:
            parts.append(f"# HELP {PREFIX}{name} {help_text}\n# TYPE {PREFIX}{name} {kind}\n")
            emitting = states if name in _CORE_NAMES else members.get(name, ())
            parts.extend([s.rendered.get(name, "") for s in emitting])
        return "".join(parts)


class AgentMetrics:
    """The non-check metrics, in a registry of our own (never the global one)."""

    def __init__(self, book: ResultBook) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.checks = CheckExposition(book)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        build = Gauge(
            f"{PREFIX}build_info", "Version of this agent.", ["version"], registry=self.registry
        )
        build.labels(version=__version__).set(1)
        self.scheduler_lag = Histogram(
            f"{PREFIX}scheduler_lag_seconds",
            "How late checks started against their schedule.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.admission_wait = Histogram(
            f"{PREFIX}check_admission_wait_seconds",
            "How long probes waited for one of the max_concurrency slots.",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.checks_waiting = Gauge(
            f"{PREFIX}checks_waiting",
            "Probes waiting for a slot now (max_concurrency reached).",
            registry=self.registry,
        )
        self.reload_success = Gauge(
            f"{PREFIX}config_reload_success",
            "1 if the last config load or reload succeeded, else 0.",
            registry=self.registry,
        )
        self.reload_timestamp = Gauge(
            f"{PREFIX}config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully (unix time).",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry) + self.checks.render().encode()
