"""Layers point one way (issue 10): read from the modules' own imports.

- no import cycle among the modules of core, checks, alerting and agent
  (TYPE_CHECKING and function-level imports count: a cycle hidden there is one);
- nothing below the web layer and the CLI imports them;
- core imports nothing of ours.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "checks", "alerting", "agent")
TOP = ("agent.web", "agent.cli", "agent.daemon")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                if target in mods and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_nothing_below_imports_the_web_layer_or_the_cli() -> None:
    up = [
        (name, target)
        for name, targets in graph().items()
        if not name.startswith(TOP)
        for target in targets
        if target.startswith(TOP)
    ]
    assert up == []


def test_checks_and_the_engine_do_not_import_the_daemon_side() -> None:
    bad = [
        (name, target)
        for name, targets in graph().items()
        if name.startswith(("checks", "alerting", "core"))
        for target in targets
        if target.startswith(TOP) or target.endswith("_component")
    ]
    assert bad == []


def test_core_imports_nothing_of_ours() -> None:
    bad = [
        (n, t)
        for n, ts in graph().items()
        if n.startswith("core")
        for t in ts
        if not t.startswith("core")
    ]
    assert bad == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
