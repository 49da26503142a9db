"""The reference docs keep up with the code: every config key of every model
(walked from agent.config.Config, so every registered check and channel type is
included) is named in docs/config.md, and every metric family the agent emits
is named in docs/metrics.md."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.config import Config
from agent.metrics import _CORE, _PERFDATA, PREFIX, fact_families
from alerting.channels.registry import CHANNEL_CONFIGS
from checks.registry import CHECK_TYPES
from tests.helpers import ROOT, AgentProcess, free_port, wait_until

CONFIG_DOC = ROOT / "docs" / "config.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"


def backticked(doc: Path) -> set[str]:
    """The key path that starts each `code span` (`key`, `key: value`, `a.b[].c`,
    `vaktpost_x{...}`), and each part of it."""
    out: set[str] = set()
    for m in re.finditer(r"`([A-Za-z_][\w.\[\]]*)", doc.read_text()):
        out.add(m.group(1))
        out.update(part for part in re.split(r"[.\[\]]+", m.group(1)) if part)
    return out


# Models written as one string in YAML, parsed by a validator: their fields are
# not keys anyone writes (`after: 50% rto`, `warning: "> 5"`).
PARSED_FROM_TEXT = {"After", "Comparison"}


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside a field's type: unions, tuples, dicts, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return
    for arg in typing.get_args(annotation):
        yield from models_in(arg)


def config_keys() -> dict[str, set[str]]:
    """key -> the models that have it, from Config down through every nested model."""
    roots: list[type[BaseModel]] = [Config]
    roots += [t.config for t in CHECK_TYPES.values()]  # in case a type is not in the union
    roots += list(CHANNEL_CONFIGS.values())
    keys: dict[str, set[str]] = {}
    seen: set[type[BaseModel]] = set()
    while roots:
        model = roots.pop()
        if model in seen:
            continue
        seen.add(model)
        if model.__name__ in PARSED_FROM_TEXT:
            continue
        for name, field in model.model_fields.items():
            keys.setdefault(field.alias or name, set()).add(model.__name__)
            roots.extend(models_in(field.annotation))
    return keys


def test_the_walk_reaches_every_registered_type() -> None:
    keys = config_keys()
    # Keys only one check or channel type has: the walk went into each of them.
    assert {"warn_percent", "cmdline_regex", "argv", "urls", "hmac_secret_file"} <= set(keys)
    assert len(keys) > 100


def test_every_config_key_is_in_the_reference() -> None:
    documented = backticked(CONFIG_DOC)
    missing = {k: sorted(models) for k, models in config_keys().items() if k not in documented}
    assert not missing, f"config keys missing from docs/config.md (key: models): {missing}"


# -- metrics --------------------------------------------------------------------------

LISTENER_CONFIG = """
agent:
  name: drift
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: en
  heartbeat: {{url: "http://127.0.0.1:{closed}/ping", interval: 1s}}
  peers: ["http://127.0.0.1:{closed}"]
channels:
  log: {{type: log, default: true}}
  hook: {{type: webhook, url: "http://127.0.0.1:{closed}/hook"}}
checks:
  - {{name: app, type: tcp, host: 127.0.0.1, port: {listener}, interval: 200ms}}
  - {{name: down, type: tcp, host: 127.0.0.1, port: {closed}, interval: 200ms,
      failures_before_alert: 1}}
  - {{name: up, type: link, targets: ["tcp://127.0.0.1:{listener}"], interval: 200ms}}
  - {{name: mem, type: memory, interval: 200ms}}
  - {{name: disk, type: disk, interval: 200ms}}
  - {{name: load, type: load, interval: 200ms}}
  - {{name: me, type: process, cmdline_regex: "vaktpost", interval: 200ms}}
  - {{name: plugin, type: command, argv: [{dummy}, "0", "fine|time=0.5s;1;2"],
      interval: 200ms}}
  - {{name: files, type: backup_files, path: "{backups}/*.tar", interval: 200ms}}
departments:
  - id: dept
    name: Department
    systems:
      - id: sys
        checks: [app, down]
        rto: 1h
        mtpd: 4h
        fallback: Paper.
        backups: [{{check: files, rpo: 24h}}]
    escalation:
      - {{after: 0m, notify: [log, hook]}}
"""


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The metric families of a daemon running one check of most local types, a
    department with a backup, an open incident and a channel that cannot deliver."""
    import socket

    from tests.helpers import require_binary

    dummy = require_binary("/usr/lib/nagios/plugins/check_dummy")
    tmp = tmp_path_factory.mktemp("drift")
    (tmp / "backups").mkdir()
    (tmp / "backups" / "today.tar").write_bytes(b"x")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = free_port()
        cfg = tmp / "vaktpost.yaml"
        cfg.write_text(
            LISTENER_CONFIG.format(
                port=port,
                state=tmp / "state",
                closed=free_port(),
                listener=listener.getsockname()[1],
                dummy=dummy,
                backups=tmp / "backups",
            )
        )
        with AgentProcess(cfg, port=port) as agent:
            agent.wait_ready()

            def families() -> set[str] | None:
                status, body = agent.get("/metrics")
                # Names as exposed (a counter's with its _total), from the TYPE lines.
                names = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.MULTILINE))
                wanted = {"vaktpost_check_perfdata", "vaktpost_system_up"}
                return names if status == 200 and wanted <= names else None

            yield wait_until(families, 20, "every check to have run once")


def metric_names_in_doc() -> set[str]:
    return {n for n in backticked(METRICS_DOC) if n.startswith(PREFIX)}


def test_every_scraped_family_is_in_the_reference(scraped: set[str]) -> None:
    ours = {n for n in scraped if n.startswith(PREFIX)}
    assert len(ours) > 20, sorted(ours)
    documented = metric_names_in_doc()
    # prometheus_client adds NAME_created beside each histogram and counter it owns.
    missing = sorted(
        n
        for n in ours - documented
        if not (n.endswith("_created") and n[: -len("_created")] in documented)
    )
    assert not missing, f"metric families missing from docs/metrics.md: {missing}"


def test_every_declared_family_is_in_the_reference() -> None:
    """Families of check types the daemon above does not run: declared in code."""
    declared = {PREFIX + name for name, _kind, _help in [*_CORE, _PERFDATA]}
    declared |= {PREFIX + metric for metric in fact_families()}
    missing = sorted(declared - metric_names_in_doc())
    assert not missing, f"metric families missing from docs/metrics.md: {missing}"
