"""YAML to plain dicts and lists that remember the file and line of every key and item.

Also: duplicate keys are errors, `${NAME}` / `${NAME:-default}` interpolation,
and merge keys (`<<`). Problems are collected, never raised one at a time.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
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

# Limits of one document (docs/config.md "Limits"): deeper nesting is a bomb, not a
# config; aliases can make a small file expand to billions of values.
MAX_DEPTH = 64
MAX_VALUES = 2_000_000
MAX_INT = 2**63 - 1

# A flow-style typo `{password:SECRET}` makes the key `password:SECRET`.
COLON_KEY = "<a key containing ':'>"


def key_name(key: object) -> str:
    """A key as shown in error paths; one holding ':' is a typo that may hold a secret."""
    text = str(key)
    return COLON_KEY if ":" in text else text


def join_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = key_name(key)
    return f"{path}.{name}" if path else name


class _TooLarge(Exception):
    """The document passed MAX_VALUES: stop building, report once."""


class _Builder:
    """Builds located values straight from parser events.

    No node graph is composed: for a 10,000-check file that graph was the peak of
    the agent's memory, and Python keeps such a peak as RSS for good.
    """

    def __init__(self, file: str, env: dict[str, str], problems: list[Problem]) -> None:
        self.file = file
        self.env = env
        self.problems = problems
        self._loader = yaml.SafeLoader("")
        self._anchors: dict[str, Any] = {}
        self._open_anchors: set[str] = set()
        self._events: Iterator[yaml.Event] = iter(())
        self._sizes: dict[str, int] = {}  # anchor -> values it expands to
        self._values = 0
        self._depth = 0
        self._too_deep = False

    def loc(self, event: yaml.Event) -> Loc:
        mark = event.start_mark
        return Loc(self.file, mark.line + 1 if mark is not None else 1)

    def document(self, events: Iterator[yaml.Event]) -> Any:
        """The single document of the stream (None when empty)."""
        self._events = events
        value = None
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                if value is not None:
                    self.problems.append(
                        Problem(self.loc(event), "yaml", "expected a single document in the stream")
                    )
                    break
                try:
                    value = self.build(next(events), "")
                except _TooLarge:
                    self.problems.append(
                        Problem(
                            self.loc(event),
                            "yaml",
                            f"the document expands to more than {MAX_VALUES} values "
                            "(aliases of aliases?)",
                        )
                    )
                    return None
        return value

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise _TooLarge

    def build(self, event: yaml.Event, path: str) -> Any:
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, path)
        anchor = getattr(event, "anchor", None)
        if anchor:
            self._open_anchors.add(anchor)
        before = self._values
        self._count(1)
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            value: Any = self._nested(event, path)
        else:
            value = self._scalar(event, path)
        if anchor:
            self._open_anchors.discard(anchor)
            self._anchors[anchor] = value
            self._sizes[anchor] = self._values - before
        return value

    def _nested(self, event: yaml.Event, path: str) -> Any:
        if self._depth >= MAX_DEPTH:
            self._skip(event)
            if not self._too_deep:  # once: every deeper branch would say the same
                self._too_deep = True
                self.problems.append(
                    Problem(self.loc(event), path or "(root)", f"nested deeper than {MAX_DEPTH}")
                )
            return None
        self._depth += 1
        try:
            if isinstance(event, yaml.MappingStartEvent):
                return self._mapping(event, path)
            return self._sequence(event, path)
        finally:
            self._depth -= 1

    def _skip(self, start: yaml.Event) -> None:
        """Consume a collection's events without building (or recursing into) it."""
        depth = 1
        for event in self._events:
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
                if depth == 0:
                    return

    def _alias(self, event: yaml.AliasEvent, path: str) -> Any:
        if event.anchor in self._anchors:
            # Validation walks an alias as often as it is used: count it each time.
            self._count(self._sizes.get(event.anchor, 1))
            return self._anchors[event.anchor]
        why = "recursive alias" if event.anchor in self._open_anchors else "undefined alias"
        self.problems.append(Problem(self.loc(event), path or "(root)", f"{why} *{event.anchor}"))
        return None

    def _sequence(self, start: yaml.Event, path: str) -> LocList:
        out = LocList()
        out.loc, out.item_locs = self.loc(start), []
        for event in self._events:
            if isinstance(event, yaml.SequenceEndEvent):
                break
            out.item_locs.append(self.loc(event))
            out.append(self.build(event, join_path(path, len(out))))
        return out

    def _mapping(self, start: yaml.Event, path: str) -> LocDict:
        out = LocDict()
        out.loc, out.key_locs = self.loc(start), {}
        merged: list[LocDict] = []
        for key_event in self._events:
            if isinstance(key_event, yaml.MappingEndEvent):
                break
            if self._is_merge_key(key_event):
                merged.extend(self._merge_sources(next(self._events), path))
                continue
            key = None
            if isinstance(key_event, yaml.ScalarEvent):
                key = self._scalar(key_event, path)
            else:
                self.build(key_event, path)  # consume the complex key's events
            value_event = next(self._events)
            if key is None or isinstance(key, dict | list):
                self.build(value_event, path)
                self.problems.append(
                    Problem(self.loc(key_event), path or "(root)", "keys must be plain scalars")
                )
                continue
            if key in out:
                self.build(value_event, path)
                first = out.key_locs[key]
                self.problems.append(
                    Problem(
                        self.loc(key_event),
                        join_path(path, key),
                        f"duplicate key (first defined on line {first.line})",
                    )
                )
                continue
            out[key] = self.build(value_event, join_path(path, key))
            out.key_locs[key] = self.loc(key_event)
        for source in merged:  # explicit keys win over merged ones
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    out.key_locs[key] = source.key_locs[key]
        return out

    def _is_merge_key(self, event: yaml.Event) -> bool:
        return (
            isinstance(event, yaml.ScalarEvent)
            and event.value == "<<"
            and event.tag in (None, "tag:yaml.org,2002:merge")
            and event.implicit[0]
        )

    def _merge_sources(self, event: yaml.Event, path: str) -> list[LocDict]:
        built = self.build(event, path)
        items = built if isinstance(built, list) else [built]
        good = [m for m in items if isinstance(m, LocDict)]
        if len(good) != len(items):
            self.problems.append(Problem(self.loc(event), path or "(root)", "<< needs mappings"))
        return good

    def _scalar(self, event: yaml.Event, path: str) -> Any:
        assert isinstance(event, yaml.ScalarEvent)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._loader.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit
            )
        node = yaml.ScalarNode(tag, event.value, None, None, event.style)
        try:
            value = self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(
                Problem(self.loc(event), path or "(root)", str(exc).split("\n")[0])
            )
            return None
        except (ValueError, OverflowError):  # 2024-02-30, an int of 5,000 digits ...
            self.problems.append(Problem(self.loc(event), path or "(root)", "invalid value"))
            return None
        finally:
            self._loader.constructed_objects.clear()  # the constructor caches every node
        if isinstance(value, str) and "$" in value:
            return self._interpolate(value, event, path)
        return self._bounded(value, event, path)

    def _bounded(self, value: Any, event: yaml.Event, path: str) -> Any:
        """Numbers a config can mean: finite, and integers that fit in 64 bits."""
        where = path or "(root)"
        if isinstance(value, float) and not math.isfinite(value):
            self.problems.append(Problem(self.loc(event), where, "not a finite number"))
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.problems.append(Problem(self.loc(event), where, "number too large"))
            return None
        return value

    def _interpolate(self, value: str, event: yaml.Event, path: str) -> str:
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
                    self.loc(event),
                    path or "(root)",
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} to give a default)",
                )
            )
            return ""

        return _ENV.sub(replace, value)


# libyaml parses a 10,000-check file in a third of the time. Its error texts are
# terser, so a file it rejects is parsed again by the Python parser for the message.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


def load_yaml(
    text: str, file: str, problems: list[Problem], env: dict[str, str] | None = None
) -> Any:
    """Parse one YAML document; problems are appended, the result may be partial or None."""
    environment = dict(os.environ) if env is None else env
    loaders = [yaml.SafeLoader] if _FAST_LOADER is None else [_FAST_LOADER, yaml.SafeLoader]
    for attempt, loader in enumerate(loaders, start=1):
        found: list[Problem] = []
        try:
            value = _Builder(file, environment, found).document(yaml.parse(text, Loader=loader))
        except yaml.MarkedYAMLError as exc:
            if attempt < len(loaders):
                continue
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            what = exc.problem or "invalid YAML"
            if exc.context:
                what = f"{what} ({exc.context})"
            problems.append(Problem(Loc(file, line), "yaml", what))
            return None
        except yaml.YAMLError as exc:
            if attempt < len(loaders):
                continue
            problems.append(Problem(Loc(file, 1), "yaml", str(exc).split("\n")[0]))
            return None
        problems.extend(found)
        return value
    return None


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
