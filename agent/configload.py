"""Load a config file: YAML with lines, includes, schema validation, cross-references.

Every problem becomes `FILE:LINE: path.to.key: message`, and all of them are
reported together.
"""

from __future__ import annotations

import difflib
import glob
import logging
import os
import stat
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.config import Config
from agent.crossref import cross_reference, plan_warnings
from agent.filerefs import missing_files
from agent.yamlsource import (
    Loc,
    LocDict,
    LocList,
    Problem,
    join_path,
    key_name,
    load_yaml,
    locate,
)
from core.redact import redact_text

_LIST_SECTIONS = ("checks", "departments", "maintenance")
_MAP_SECTIONS = ("agent", "channels")
# Limits (docs/config.md "Limits"): a 10,000-check file is about 2 MiB.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_FILES = 1000


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        # An unset ${VAR} also fails the schema on the same key: report it once.
        unique = {(p.loc, p.path): p for p in reversed(problems)}
        self.problems = sorted(reversed(unique.values()), key=lambda p: (p.loc.file, p.loc.line))
        super().__init__("\n".join(str(p) for p in self.problems))


class FileRefused(Exception):
    """A config file that cannot or must not be read; the text says why, naming no value."""


def read_config_file(path: Path) -> str:
    """A regular file of at most MAX_FILE_BYTES, as UTF-8.

    Devices and FIFOs are refused before reading (`include: [/dev/zero]` would read
    forever); O_NONBLOCK keeps a FIFO swapped in after the check from blocking open.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read: {_os_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused("cannot read: is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("cannot read: not a regular file (a device, FIFO or socket)")
        if info.st_size > MAX_FILE_BYTES:
            raise FileRefused(f"file too large: at most {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)  # a file may grow after fstat
    except OSError as exc:
        raise FileRefused(f"cannot read: {_os_reason(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(f"file too large: at most {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"cannot read: not UTF-8 text (byte {exc.start})") from None


def _os_reason(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else type(exc).__name__


def load_config(
    path: str | Path,
    env: dict[str, str] | None = None,
    *,
    check_files: bool = False,
    warnings: list[Problem] | None = None,
) -> Config:
    path = Path(path)
    try:
        text = read_config_file(path)
    except FileRefused as exc:
        raise ConfigError([Problem(Loc(str(path), 1), "(file)", str(exc))]) from None
    return load_config_text(text, str(path), env, check_files=check_files, warnings=warnings)


def load_config_text(
    text: str,
    file: str,
    env: dict[str, str] | None = None,
    *,
    check_files: bool = False,
    warnings: list[Problem] | None = None,
) -> Config:
    """`check_files`: secrets and certificates named must be readable (`vaktpost validate`).

    Warnings (valid, but surely not meant) go to `warnings`, or to the log without it.
    """
    problems: list[Problem] = []
    root = _load_tree(text, file, env, problems, seen=set(), budget=[MAX_TOTAL_BYTES - len(text)])
    config = _validate(root, problems)
    problems.extend(cross_reference(root))
    if check_files:
        problems.extend(missing_files(root))
    if problems or config is None:
        raise ConfigError(problems)
    found = plan_warnings(root)
    if warnings is None:
        for warning in found:
            logging.getLogger("vaktpost.config").warning("%s", warning)
    else:
        warnings.extend(found)
    return apply_defaults(config)


def _load_tree(
    text: str,
    file: str,
    env: dict[str, str] | None,
    problems: list[Problem],
    seen: set[str],
    budget: list[int],
) -> LocDict:
    data = load_yaml(text, file, problems, env)
    if data is None:
        data = LocDict()
        data.loc, data.key_locs = Loc(file, 1), {}
    if not isinstance(data, LocDict):
        problems.append(Problem(Loc(file, 1), "(root)", "the config must be a mapping"))
        empty = LocDict()
        empty.loc, empty.key_locs = Loc(file, 1), {}
        return empty
    seen.add(str(Path(file).resolve()))
    includes = data.get("include")
    if includes is None:
        return data
    if not isinstance(includes, LocList) or not all(isinstance(i, str) for i in includes):
        problems.append(
            Problem(
                locate(data, ("include",)) or data.loc,
                "include",
                "must be a list of file paths or globs",
            )
        )
        return data
    for index, pattern in enumerate(includes):
        where = includes.item_locs[index]
        for child in _expand(pattern, Path(file).parent, where, problems, index):
            if str(child.resolve()) in seen:
                problems.append(Problem(where, f"include[{index}]", f"{child} is included twice"))
                continue
            if len(seen) >= MAX_FILES:
                problems.append(
                    Problem(where, f"include[{index}]", f"more than {MAX_FILES} config files")
                )
                return data
            try:
                child_text = read_config_file(child)
            except FileRefused as exc:
                problems.append(Problem(where, f"include[{index}]", f"{child}: {exc}"))
                continue
            budget[0] -= len(child_text)
            if budget[0] < 0:
                problems.append(
                    Problem(
                        where,
                        f"include[{index}]",
                        f"{child}: the config files together exceed "
                        f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB",
                    )
                )
                return data
            sub = _load_tree(child_text, str(child), env, problems, seen, budget)
            _merge(data, sub, problems)
    return data


def _expand(
    pattern: str, base: Path, where: Loc, problems: list[Problem], index: int
) -> list[Path]:
    full = pattern if Path(pattern).is_absolute() else str(base / pattern)
    matches = sorted(Path(p) for p in glob.glob(full))
    if not matches and not glob.has_magic(pattern):
        problems.append(Problem(where, f"include[{index}]", f"no such file: {full}"))
    return matches


def _merge(into: LocDict, sub: LocDict, problems: list[Problem]) -> None:
    """Lists concatenate; agent and channels merge key by key; a key twice is an error."""
    for key, value in sub.items():
        if key == "include":
            continue
        where = sub.key_locs.get(key, sub.loc)
        if key not in into:
            into[key] = value
            into.key_locs[key] = where
        elif (
            key in _LIST_SECTIONS and isinstance(into[key], LocList) and isinstance(value, LocList)
        ):
            into[key].extend(value)
            into[key].item_locs.extend(value.item_locs)
        elif key in _MAP_SECTIONS and isinstance(into[key], LocDict) and isinstance(value, LocDict):
            for sub_key, sub_value in value.items():
                sub_where = value.key_locs[sub_key]
                if sub_key in into[key]:
                    first = into[key].key_locs[sub_key]
                    problems.append(
                        Problem(
                            sub_where,
                            join_path(key, sub_key),
                            f"already defined at {first.file}:{first.line}",
                        )
                    )
                    continue
                into[key][sub_key] = sub_value
                into[key].key_locs[sub_key] = sub_where
        else:
            first = into.key_locs.get(key, into.loc)
            problems.append(
                Problem(where, str(key), f"already defined at {first.file}:{first.line}")
            )


def _validate(root: LocDict, problems: list[Problem]) -> Config | None:
    try:
        return Config.model_validate(root)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(_problem(root, error))
        return None


def _problem(root: LocDict, error: Any) -> Problem:
    loc = _data_path(root, tuple(error["loc"]))
    kind = error["type"]
    message = _without_values(str(error["msg"]).removeprefix("Value error, "), error.get("input"))
    where = locate(root, loc) or root.loc
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{key_name(k)}" for k in loc).lstrip(".")
    # The data path can come out empty for an odd top-level key ('[key]'): name it anyway.
    raw = tuple(error["loc"])
    last = str(loc[-1]) if loc else (str(raw[-1]) if raw else "")
    if not loc and raw:
        path = key_name(last)
    if kind == "extra_forbidden" and ":" in last:
        message = (
            "unknown key (a mapping key containing ':'; did you forget a space after the colon?)"
        )
    elif kind == "extra_forbidden":
        message = "unknown key" + _did_you_mean(last, _known_keys(root, loc[:-1]))
    elif kind == "missing":
        message = "missing required key"
        where = locate(root, loc[:-1]) or where
    elif kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        expected = [t.strip(" '") for t in error["ctx"]["expected_tags"].split(",")]
        message = "unknown type" + _did_you_mean(tag, expected)
        message += f"; known types: {', '.join(sorted(expected))}"
        loc = (*loc, "type")
        path += ".type"
        where = locate(root, loc) or where
    elif kind == "union_tag_not_found":
        message = "missing required key 'type'"
    return Problem(where, path or "(root)", message)


def _without_values(message: str, value: Any) -> str:
    """The message without the value it judged: `validate` prints key paths, never values.

    A password pasted into the wrong key, or a URL with credentials, must not reach
    a terminal or a CI log. Values are quoted by the validators that name them.
    """
    for text in _scalar_texts(value):
        for quoted in dict.fromkeys((repr(text), f"'{text}'", f'"{text}"')):
            message = message.replace(f" {quoted}", "").replace(quoted, "(the value)")
    return redact_text(message)


def _scalar_texts(value: Any, limit: int = 100) -> list[str]:
    """The strings of a scalar or a list of scalars (a model's dict names things, keep it)."""
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in items[:limit] if isinstance(v, str | int | float) and str(v)]


def _data_path(root: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop what pydantic adds that is not in the file: union tags and `[key]`."""
    out: list[Any] = []
    node = root
    for key in loc:
        if key == "[key]":
            continue
        if isinstance(node, dict) and key not in node and node.get("type") == key:
            continue
        out.append(key)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return tuple(out)


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(root: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that validates the mapping at `loc`."""
    annotation: Any = Config
    node = root
    for key in loc:
        annotation = _step(_pick(annotation, node), key)
        node = (
            node.get(key)
            if isinstance(node, dict)
            else (
                node[key]
                if isinstance(node, list) and isinstance(key, int) and key < len(node)
                else None
            )
        )
    model = _pick(annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _pick(annotation: Any, node: Any) -> Any:
    """Unwrap Annotated/Optional/unions; pick a union member by the data's `type`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            chosen = members[0]
            for member in members:
                fields = getattr(member, "model_fields", {})
                literal = typing.get_args(fields["type"].annotation) if "type" in fields else ()
                if isinstance(node, dict) and node.get("type") in literal:
                    chosen = member
            annotation = chosen
        else:
            return annotation


def _step(annotation: Any, key: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(key))
        return field.annotation if field else None
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (tuple, list) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def apply_defaults(config: Config) -> Config:
    """Fill interval, timeout and failures_before_alert where the file leaves them unset.

    A check type's own `type_defaults` come first (a restic check needs minutes,
    not the 10 s a ping gets), then agent.defaults.

    Filled in place: the models were validated a moment ago by this loader and
    nobody else holds them yet. model_copy would give every check a new field
    dict and a grown fields-set, ~0.5 KiB each that stays (5 MiB at 10,000
    checks) and twice the configs' memory while it runs; `model_fields_set`
    keeps saying what the file set.
    """
    defaults = config.agent.defaults
    for check in config.checks:
        for key in ("interval", "timeout", "failures_before_alert"):
            if key not in check.model_fields_set:
                object.__setattr__(check, key, check.type_defaults.get(key, getattr(defaults, key)))
    return config


__all__ = ["ConfigError", "LocList", "load_config", "load_config_text"]


DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


def read_config(
    path: str | None, *, check_files: bool = False, warnings: list[Problem] | None = None
) -> Config:
    """The file at `path`, or the embedded default config when None."""
    if path is None:
        text = DEFAULT_CONFIG.read_text(encoding="utf-8")
        return load_config_text(text, "<default.yaml>", check_files=check_files, warnings=warnings)
    return load_config(path, check_files=check_files, warnings=warnings)
