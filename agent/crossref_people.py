"""Cross-references of people, rotations and drills (called from agent/crossref.py).

Names that must exist, overrides that overlap, and channels whose `{phone}`,
`{email}` or `{name}` a person cannot fill: each is an error `vaktpost validate`
reports with its line, before the night a message would fail.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.yamlsource import LocDict, LocList
from alerting.channels.recipient import placeholders

Add = Callable[[tuple[Any, ...], str], None]
PERSON, ROTATION = "person:", "rotation:"


def _hint(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _strings(node: Any) -> list[tuple[int, str]]:
    if not isinstance(node, LocList):
        return []
    return [(i, v) for i, v in enumerate(node) if isinstance(v, str)]


def _local(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is None else None


class PeopleRefs:
    def __init__(self, root: LocDict, add: Add, channels: set[str]) -> None:
        self.root = root
        self.add = add
        self.channels = channels
        people = root.get("people")
        self.people: dict[str, LocDict] = (
            {str(k): v for k, v in people.items() if isinstance(v, LocDict)}
            if isinstance(people, LocDict)
            else {}
        )
        rotations = root.get("rotations")
        self.rotations: dict[str, LocDict] = (
            {str(k): v for k, v in rotations.items() if isinstance(v, LocDict)}
            if isinstance(rotations, LocDict)
            else {}
        )

    def _needs(self, channel: str) -> set[str]:
        """The placeholders in a channel's argv or urls."""
        config = self.root.get("channels")
        node = config.get(channel) if isinstance(config, LocDict) else None
        if not isinstance(node, LocDict):
            return set()
        found: set[str] = set()
        for key in ("argv", "urls"):
            for _, text in _strings(node.get(key)):
                found |= placeholders(text)
        return found

    def target(self, path: tuple[Any, ...], entry: str) -> None:
        """A notify entry: a channel, person:NAME or rotation:NAME."""
        if entry.startswith(PERSON):
            name = entry.removeprefix(PERSON)
            if name not in self.people:
                self.add(path, f"unknown person {name!r}" + _hint(name, set(self.people)))
        elif entry.startswith(ROTATION):
            name = entry.removeprefix(ROTATION)
            if name not in self.rotations:
                self.add(path, f"unknown rotation {name!r}" + _hint(name, set(self.rotations)))
        elif entry not in self.channels:
            self.add(path, f"unknown channel {entry!r}" + _hint(entry, self.channels))
        elif needs := self._needs(entry):
            wanted = ", ".join("{" + n + "}" for n in sorted(needs))
            self.add(
                path,
                f"channel {entry!r} needs {wanted} of a person: notify person:NAME or "
                "rotation:NAME, whose via lists it",
            )

    def run(self) -> None:
        for name, person in self.people.items():
            self._person(name, person)
        for name, rotation in self.rotations.items():
            self._rotation(name, rotation)
        drills = self.root.get("drills")
        if isinstance(drills, LocList):
            for d, drill in enumerate(drills):
                if isinstance(drill, LocDict):
                    for n, entry in _strings(drill.get("notify")):
                        self.target(("drills", d, "notify", n), entry)

    def _person(self, name: str, person: LocDict) -> None:
        for v, channel in _strings(person.get("via")):
            path = ("people", name, "via", v)
            if channel not in self.channels:
                self.add(path, f"unknown channel {channel!r}" + _hint(channel, self.channels))
                continue
            for field in sorted(self._needs(channel)):
                if field != "name" and not person.get(field):
                    self.add(path, f"channel {channel!r} needs {{{field}}}, {name} has no {field}")

    def _rotation(self, name: str, rotation: LocDict) -> None:
        for m, member in _strings(rotation.get("members")):
            if member not in self.people:
                self.add(
                    ("rotations", name, "members", m),
                    f"unknown person {member!r}" + _hint(member, set(self.people)),
                )
        spans: list[tuple[datetime, datetime, int]] = []
        overrides = rotation.get("overrides")
        for o, override in enumerate(overrides if isinstance(overrides, LocList) else []):
            if not isinstance(override, LocDict):
                continue
            person = override.get("person")
            if isinstance(person, str) and person not in self.people:
                self.add(
                    ("rotations", name, "overrides", o, "person"),
                    f"unknown person {person!r}" + _hint(person, set(self.people)),
                )
            start, end = _local(override.get("from")), _local(override.get("to"))
            if start is None or end is None or end <= start:
                continue  # the schema reports it
            for s, e, other in spans:
                if start < e and s < end:
                    self.add(
                        ("rotations", name, "overrides", o),
                        f"override overlaps override #{other + 1} ({s:%Y-%m-%d %H:%M} to "
                        f"{e:%Y-%m-%d %H:%M}): who is on duty would be ambiguous",
                    )
            spans.append((start, end, o))
