"""Cross-reference checks the schema cannot express: names that must exist, cycles.

Runs on the raw located tree so it reports even when other parts are invalid.
`plan_warnings` finds what is allowed but almost certainly not meant.
"""

from __future__ import annotations

import difflib
from typing import Any

from agent.config import After, parse_after
from agent.crossref_people import PeopleRefs
from agent.yamlsource import LocDict, LocList, Problem, locate
from checks.registry import CHECK_TYPES
from core.durations import format_duration, parse_duration

BACKUP_TYPES = sorted(name for name, t in CHECK_TYPES.items() if t.config.is_backup)


def _items(node: Any) -> list[tuple[int, LocDict]]:
    if not isinstance(node, LocList):
        return []
    return [(i, item) for i, item in enumerate(node) if isinstance(item, LocDict)]


def _names(node: Any) -> list[tuple[int, str]]:
    if not isinstance(node, LocList):
        return []
    return [(i, v) for i, v in enumerate(node) if isinstance(v, str)]


def _hint(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Refs:
    def __init__(self, root: LocDict) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.check_types: dict[str, str] = {}

    def add(self, path: tuple[Any, ...], message: str) -> None:
        where = locate(self.root, path) or self.root.loc
        text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
        self.problems.append(Problem(where, text, message))

    def run(self) -> list[Problem]:
        checks = self._check_names()
        channels = self._channel_names()
        self._depends_on(checks)
        self.people_refs = PeopleRefs(self.root, self.add, channels)
        self._departments(checks, channels)
        agent = self.root.get("agent")
        if isinstance(agent, LocDict):
            self._ladder(("agent", "default_escalation"), agent.get("default_escalation"), channels)
        self.people_refs.run()
        return self.problems

    def _check_names(self) -> set[str]:
        seen: dict[str, int] = {}
        for i, check in _items(self.root.get("checks")):
            name = check.get("name")
            if not isinstance(name, str):
                continue
            kind = check.get("type")
            if isinstance(kind, str):
                self.check_types.setdefault(name, kind)
            if name in seen:
                first = locate(self.root, ("checks", seen[name], "name"))
                line = f" on line {first.line}" if first else ""
                self.add(("checks", i, "name"), f"duplicate check name {name!r} (first{line})")
            else:
                seen[name] = i
        return set(seen)

    def _channel_names(self) -> set[str]:
        channels = self.root.get("channels")
        if not isinstance(channels, LocDict):
            return set()
        names = {str(k) for k in channels}
        graph: dict[str, list[str]] = {}
        for name, channel in channels.items():
            if not isinstance(channel, LocDict):
                continue
            for j, target in _names(channel.get("fallback")):
                path = ("channels", name, "fallback", j)
                if target not in names:
                    self.add(path, f"unknown channel {target!r}" + _hint(target, names))
                elif target == name:
                    self.add(path, "a channel cannot be its own fallback")
                else:
                    graph.setdefault(str(name), []).append(target)
        # A loop would hand a notification round and round while every channel fails.
        for cycle in _cycles(graph):
            self.add(("channels", cycle[0], "fallback"), "fallback cycle: " + " -> ".join(cycle))
        return names

    def _depends_on(self, checks: set[str]) -> None:
        graph: dict[str, list[str]] = {}
        index: dict[str, int] = {}
        for i, check in _items(self.root.get("checks")):
            name = check.get("name")
            for j, dep in _names(check.get("depends_on")):
                if dep not in checks:
                    self.add(
                        ("checks", i, "depends_on", j),
                        f"unknown check {dep!r}" + _hint(dep, checks),
                    )
                elif isinstance(name, str):
                    graph.setdefault(name, []).append(dep)
            if isinstance(name, str):
                index.setdefault(name, i)
        for cycle in _cycles(graph):
            self.add(
                ("checks", index[cycle[0]], "depends_on"), "dependency cycle: " + " -> ".join(cycle)
            )

    def _departments(self, checks: set[str], channels: set[str]) -> None:
        seen: set[str] = set()
        for d, dept in _items(self.root.get("departments")):
            dept_id = dept.get("id")
            if isinstance(dept_id, str):
                if dept_id in seen:
                    self.add(("departments", d, "id"), f"duplicate department id {dept_id!r}")
                seen.add(dept_id)
            systems_seen: set[str] = set()
            for s, system in _items(dept.get("systems")):
                base = ("departments", d, "systems", s)
                sys_id = system.get("id")
                if isinstance(sys_id, str):
                    if sys_id in systems_seen:
                        self.add((*base, "id"), f"duplicate system id {sys_id!r}")
                    systems_seen.add(sys_id)
                for c, name in _names(system.get("checks")):
                    if name not in checks:
                        self.add(
                            (*base, "checks", c), f"unknown check {name!r}" + _hint(name, checks)
                        )
                for b, backup in _items(system.get("backups")):
                    self._backup_ref((*base, "backups", b, "check"), backup.get("check"), checks)
            self._ladder(("departments", d, "escalation"), dept.get("escalation"), channels)
            self._after_needs(d, dept)

    def _backup_ref(self, path: tuple[Any, ...], ref: Any, checks: set[str]) -> None:
        if not isinstance(ref, str):
            return
        if ref not in checks:
            self.add(path, f"unknown check {ref!r}" + _hint(ref, checks))
            return
        kind = self.check_types.get(ref)
        config = CHECK_TYPES[kind].config if kind in CHECK_TYPES else None
        if config is not None and not config.is_backup:
            self.add(
                path,
                f"check {ref!r} is a {kind} check, not a backup "
                f"(a backup is one of: {', '.join(BACKUP_TYPES)})",
            )

    def _ladder(self, path: tuple[Any, ...], steps: Any, channels: set[str]) -> None:
        for s, step in _items(steps):
            for n, name in _names(step.get("notify")):
                # A channel, person:NAME or rotation:NAME (agent/crossref_people.py).
                self.people_refs.target((*path, s, "notify", n), name)

    def _after_needs(self, d: int, dept: LocDict) -> None:
        """A step `after: rto` needs every system of the department to have an rto."""
        for s, step in _items(dept.get("escalation")):
            after = step.get("after")
            if not isinstance(after, str):
                continue
            for key in ("rto", "mtpd"):
                if not after.strip().endswith(key):
                    continue
                for _i, system in _items(dept.get("systems")):
                    if system.get(key) is None:
                        self.add(
                            ("departments", d, "escalation", s, "after"),
                            f"step after {after!r} but system {system.get('id')!r} has no {key}",
                        )


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle once, as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def cross_reference(root: LocDict) -> list[Problem]:
    return _Refs(root).run()


def plan_warnings(root: LocDict) -> list[Problem]:
    """Steps that come after a system's MTPD: valid, but past what the plan calls intolerable."""
    refs = _Refs(root)
    for d, dept in _items(root.get("departments")):
        systems = [
            (system.get("id"), _seconds(system.get("rto")), _seconds(system.get("mtpd")))
            for _s, system in _items(dept.get("systems"))
        ]
        for s, step in _items(dept.get("escalation")):
            after = _after(step.get("after"))
            if after is None:
                continue
            late = []
            for sys_id, rto, mtpd in systems:
                try:
                    at = after.resolve(rto, mtpd)
                except ValueError:  # no rto/mtpd: an error cross_reference reports
                    continue
                if mtpd is not None and at > mtpd:
                    late.append(
                        f"{sys_id!r} at {format_duration(at)} (mtpd {format_duration(mtpd)})"
                    )
            if late:
                refs.add(
                    ("departments", d, "escalation", s, "after"),
                    "warning: the step comes past the mtpd, when the outage is already "
                    f"intolerable: system{'s' if len(late) > 1 else ''} {', '.join(late)}",
                )
    return refs.problems


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value) if value is not None else None
    except ValueError:
        return None


def _after(value: Any) -> After | None:
    try:
        return After.model_validate(parse_after(value))
    except ValueError:  # pydantic's ValidationError is one
        return None
