"""YAML to plain dicts and lists that remember the file and line of every key and item.

Also: duplicate keys are errors, `${NAME}` / `${NAME:-default}` interpolation,
and merge keys (`<<`). Problems are collected, never raised one at a time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Loc:
    file: str
    line: int  # 1-based


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.loc.file}:{self.loc.line}: {self.path}: {self.message}"


class LocDict(dict[Any, Any]):
    """A mapping with `loc` (where it starts) and `key_locs` (where each key is)."""

    loc: Loc
    key_locs: dict[Any, Loc]


class LocList(list[Any]):
    loc: Loc
    item_locs: list[Loc]


_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def join_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Builder:
    def __init__(self, file: str, env: dict[str, str], problems: list[Problem]) -> None:
        self.file = file
        self.env = env
        self.problems = problems
        self._active: set[int] = set()
        self._loader = yaml.SafeLoader("")

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: str) -> Any:
        if id(node) in self._active:
            self.problems.append(Problem(self.loc(node), path or "(root)", "recursive alias"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                out = LocList()
                out.loc, out.item_locs = self.loc(node), []
                for item in node.value:
                    out.append(self.build(item, join_path(path, len(out))))
                    out.item_locs.append(self.loc(item))
                return out
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> LocDict:
        out = LocDict()
        out.loc, out.key_locs = self.loc(node), {}
        merged: list[LocDict] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = None
            if isinstance(key_node, yaml.ScalarNode):
                key = self._scalar(key_node, path)
            if key is None or isinstance(key, dict | list):
                self.problems.append(
                    Problem(self.loc(key_node), path or "(root)", "keys must be plain scalars")
                )
                continue
            if key in out:
                first = out.key_locs[key]
                self.problems.append(
                    Problem(
                        self.loc(key_node),
                        join_path(path, key),
                        f"duplicate key (first defined on line {first.line})",
                    )
                )
                continue
            out[key] = self.build(value_node, join_path(path, key))
            out.key_locs[key] = self.loc(key_node)
        for source in merged:  # explicit keys win over merged ones
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    out.key_locs[key] = source.key_locs[key]
        return out

    def _merge_sources(self, node: yaml.Node, path: str) -> list[LocDict]:
        built = self.build(node, path)
        items = built if isinstance(built, list) else [built]
        good = [m for m in items if isinstance(m, LocDict)]
        if len(good) != len(items):
            self.problems.append(Problem(self.loc(node), path or "(root)", "<< needs mappings"))
        return good

    def _scalar(self, node: yaml.Node, path: str) -> Any:
        try:
            value = self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.loc(node), path or "(root)", str(exc).split("\n")[0]))
            return None
        if isinstance(value, str) and "$" in value:
            return self._interpolate(value, node, path)
        return value

    def _interpolate(self, value: str, node: yaml.Node, path: str) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problems.append(
                Problem(
                    self.loc(node),
                    path or "(root)",
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} to give a default)",
                )
            )
            return ""

        return _ENV.sub(replace, value)


def load_yaml(
    text: str, file: str, problems: list[Problem], env: dict[str, str] | None = None
) -> Any:
    """Parse one YAML document; problems are appended, the result may be partial or None."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{what} ({exc.context})"
        problems.append(Problem(Loc(file, line), "yaml", what))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(Loc(file, 1), "yaml", str(exc).split("\n")[0]))
        return None
    if node is None:
        return None
    return _Builder(file, dict(os.environ) if env is None else env, problems).build(node, "")


def locate(root: Any, path: tuple[Any, ...]) -> Loc | None:
    """The most precise location known for a path of keys and indexes."""
    best: Loc | None = getattr(root, "loc", None)
    node = root
    for key in path:
        if isinstance(node, LocDict) and key in node:
            best = node.key_locs.get(key, best)
            node = node[key]
        elif isinstance(node, LocList) and isinstance(key, int) and 0 <= key < len(node):
            best = node.item_locs[key]
            node = node[key]
        else:
            break
    return best
