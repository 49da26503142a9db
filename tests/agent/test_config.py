"""Config loading: every bad file fails with its exact FILE:LINE: path: message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import Config
from agent.configload import ConfigError, load_config, load_config_text
from checks.registry import CHECK_TYPES
from tests.helpers import ROOT, VAKTPOST

BAD = ROOT / "tests" / "configs" / "bad"
KNOWN_TYPES = ", ".join(sorted(CHECK_TYPES))

CASES = [
    ("yaml_syntax", 3, "yaml: mapping values are not allowed here"),
    ("unknown_top_key", 3, "checkz: unknown key (did you mean 'checks'?)"),
    ("unknown_check_key", 6, "checks[0].intervall: unknown key (did you mean 'interval'?)"),
    (
        "bad_duration",
        6,
        "checks[0].interval: invalid duration: use a number with a unit "
        "ms, s, m, h, d or w (e.g. 30s)",
    ),
    (
        "wrong_type_int",
        5,
        "checks[0].port: Input should be a valid integer, unable to parse string as an integer",
    ),
    ("duplicate_check_name", 6, "checks[1].name: duplicate check name 'web' (first on line 2)"),
    ("unknown_dependency", 6, "checks[0].depends_on[0]: unknown check 'switch'"),
    ("dependency_cycle", 4, "checks[0].depends_on: dependency cycle: a -> b -> a"),
    (
        "unknown_channel_in_step",
        6,
        "departments[0].escalation[0].notify[0]: unknown channel 'opps' (did you mean 'ops'?)",
    ),
    (
        "unset_env",
        4,
        "checks[0].argv[0]: environment variable VAKTPOST_TEST_UNSET_PLUGIN is not set "
        "(write ${VAKTPOST_TEST_UNSET_PLUGIN:-default} to give a default)",
    ),
    (
        "unknown_check_type",
        3,
        f"checks[0].type: unknown type (did you mean 'memory'?); known types: {KNOWN_TYPES}",
    ),
    ("missing_type", 2, "checks[0]: missing required key 'type'"),
    ("missing_required", 2, "checks[0].port: missing required key"),
    ("duplicate_key", 3, "agent.name: duplicate key (first defined on line 2)"),
    (
        "bad_check_name",
        2,
        "checks[0].name: invalid name: use lowercase letters, digits, '_', '.' "
        "and '-', starting with a letter or digit",
    ),
    (
        "bad_listen",
        2,
        "agent.listen: invalid listen address: use host:port, e.g. 127.0.0.1:9730",
    ),
    ("bad_timezone", 2, "agent.timezone: unknown timezone, e.g. Europe/Stockholm"),
    ("unknown_fallback", 2, "channels.ops.fallback[0]: unknown channel 'sms'"),
    ("mtpd_before_rto", 6, "departments[0].systems[0]: mtpd must not be shorter than rto"),
    ("unknown_system_check", 6, "departments[0].systems[0].checks[1]: unknown check 'web'"),
    (
        "after_needs_mtpd",
        8,
        "departments[0].escalation[0].after: step after '50% mtpd' but system 'treserva' "
        "has no mtpd",
    ),
    (
        "bad_cron",
        3,
        "maintenance[0].cron: invalid cron: bad hour '25' (use 0-23)",
    ),
    (
        "bad_after",
        6,
        "departments[0].escalation[0].after: invalid after: use a duration (30m), "
        "rto, mtpd, or a share like 50% rto",
    ),
    ("include_missing", 1, "include[0]: no such file: {dir}/missing.yaml"),
    ("not_a_mapping", 1, "(root): the config must be a mapping"),
    (
        "bad_regex",
        6,
        "checks[0].expect: invalid regex: missing ), unterminated subpattern at position 0",
    ),
    ("quorum_too_high", 2, "checks[0]: quorum 2 exceeds the 1 targets"),
    ("peer_credentials", 2, "agent.peers: peer 'srv-app02': a peer URL must not carry credentials"),
    ("zero_concurrency", 2, "agent.max_concurrency: Input should be greater than or equal to 1"),
    (
        "backup_not_a_backup",
        7,
        "departments[0].systems[0].backups[0].check: check 'treserva-db' is a tcp check, "
        "not a backup (a backup is one of: backup_files, borg, push, restic)",
    ),
    ("fallback_cycle", 2, "channels.a.fallback: fallback cycle: a -> b -> c -> a"),
]


@pytest.mark.parametrize(("name", "line", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_reports_file_line_and_key(name: str, line: int, message: str) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    expected = f"{path}:{line}: " + message.replace("{dir}", str(BAD))
    assert [str(p) for p in caught.value.problems] == [expected]


def test_every_bad_file_is_in_the_table() -> None:
    assert {p.stem for p in BAD.glob("*.yaml")} == {c[0] for c in CASES}
    assert len(CASES) >= 20


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "agent:\n  listn: 1\n"
        "checks:\n"
        "  - {name: a, type: memory, interval: 5x}\n"
        "  - {name: a, type: tcp, host: h, port: 0}\n"
        "  - {name: c, type: memory, depends_on: [zz]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    lines = [(p.loc.line, p.path) for p in caught.value.problems]
    assert lines == [
        (2, "agent.listn"),
        (4, "checks[0].interval"),
        (5, "checks[1].port"),
        (5, "checks[1].name"),
        (6, "checks[2].depends_on[0]"),
    ]


def test_validate_cli_prints_errors_and_exits_1() -> None:
    path = BAD / "unknown_check_key.yaml"
    proc = subprocess.run(
        [*VAKTPOST, "validate", "-c", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"{path}:6: checks[0].intervall: unknown key (did you mean 'interval'?)"
    )


def test_env_interpolation_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "agent:\n  name: ${HOST_NAME}\n  defaults: {interval: 2m, timeout: 3s}\n"
        "checks:\n"
        "  - {name: web, type: tcp, host: '${TARGET:-127.0.0.1}', port: '${PORT}'}\n"
        "  - {name: mem, type: memory, interval: 10s, failures_before_alert: 5}\n"
        "  - {name: cost, type: command, argv: [echo, 'costs $$5']}\n"
    )
    config = load_config(path, env={"HOST_NAME": "srv-app01", "PORT": "8443"})
    web, mem, cost = config.checks
    assert config.agent.name == "srv-app01"
    assert (web.host, web.port) == ("127.0.0.1", 8443)  # type: ignore[attr-defined]
    assert (web.interval, web.timeout, web.failures_before_alert) == (120.0, 3.0, 2)
    assert (mem.interval, mem.timeout, mem.failures_before_alert) == (10.0, 3.0, 5)
    assert cost.argv == ("echo", "costs $5")  # type: ignore[attr-defined]


def test_include_merges_relative_globs(tmp_path: Path) -> None:
    (tmp_path / "departments").mkdir()
    (tmp_path / "main.yaml").write_text(
        "include: [departments/*.yaml]\n"
        "channels: {ops: {type: log}}\n"
        "checks: [{name: db, type: memory}]\n"
    )
    (tmp_path / "departments" / "soc.yaml").write_text(
        "channels: {soc-log: {type: log}}\n"
        "checks: [{name: web, type: memory}]\n"
        "departments:\n  - id: soc\n    systems: [{id: treserva, checks: [db, web]}]\n"
        "    escalation: [{after: 0m, notify: [ops, soc-log]}]\n"
    )
    config = load_config(tmp_path / "main.yaml", env={})
    assert [c.name for c in config.checks] == ["db", "web"]
    assert set(config.channels) == {"ops", "soc-log"}
    assert config.departments[0].systems[0].checks == ("db", "web")


def test_include_conflict_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("include: [more.yaml]\nchannels: {ops: {type: log}}\n")
    (tmp_path / "more.yaml").write_text("channels:\n  ops: {type: log}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "main.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/more.yaml:2: channels.ops: already defined at {tmp_path}/main.yaml:2"
    ]


def test_include_error_points_into_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("include: [more.yaml]\nchecks: [{name: a, type: memory}]\n")
    (tmp_path / "more.yaml").write_text("checks:\n  - name: b\n    type: memory\n    warn: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "main.yaml", env={})
    (problem,) = caught.value.problems
    assert (problem.loc.file, problem.loc.line, problem.path) == (
        f"{tmp_path}/more.yaml",
        4,
        "checks[1].warn",
    )


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml:1: \(file\): cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    with pytest.raises(ConfigError, match="recursive alias"):
        load_config_text("checks: &a [*a]\n", "r.yaml", env={})


def test_config_models_are_frozen() -> None:
    config = load_config_text("checks: [{name: m, type: memory}]\n", "f.yaml", env={})
    with pytest.raises(Exception, match="frozen"):
        config.checks[0].interval = 1.0  # type: ignore[misc]


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "agent",
                    "checks",
                    "name",
                    "type",
                    "port",
                    "interval",
                    "channels",
                    "departments",
                    "include",
                    "depends_on",
                    "escalation",
                    "after",
                    "notify",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_values)
def test_arbitrary_yaml_structures_never_crash_the_loader(value: object) -> None:
    text = yaml.safe_dump(value)
    try:
        config = load_config_text(text, "fuzz.yaml", env={})
    except ConfigError as exc:
        assert exc.problems
        assert all(str(p).startswith("fuzz.yaml:") for p in exc.problems)
    else:
        assert isinstance(config, Config)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    try:
        load_config_text(text, "fuzz.yaml", env={})
    except ConfigError as exc:
        assert all(str(p).startswith("fuzz.yaml:") for p in exc.problems)


def test_type_defaults_come_before_agent_defaults() -> None:
    config = load_config_text(
        "agent: {defaults: {interval: 30s, timeout: 5s}}\n"
        "checks:\n"
        "  - {name: repo, type: restic, repository: /srv/restic}\n"
        "  - {name: repo2, type: borg, repository: /srv/borg, timeout: 20m}\n"
        "  - {name: mem, type: memory}\n",
        "t.yaml",
        env={},
    )
    repo, repo2, mem = config.checks
    assert (repo.interval, repo.timeout) == (3600.0, 3600.0)
    assert (repo2.interval, repo2.timeout) == (3600.0, 1200.0)
    assert (mem.interval, mem.timeout) == (30.0, 5.0)


def test_yaml_features_aliases_merge_keys_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "y.yaml"
    path.write_text(
        "defaults: &fast {interval: 5s, timeout: 1s}\n"
        "checks:\n"
        "  - {<<: *fast, name: a, type: memory}\n"
        "  - <<: *fast\n"
        "    name: b\n"
        "    type: memory\n"
        "    timeout: 2s\n"
        "  - {name: c, type: memory, labels: *nope}\n"
        "  - {name: d, type: memory, labels: {x: !secret y}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1: defaults: unknown key",
        f"{path}:8: checks[2].labels: undefined alias *nope",
        f"{path}:9: checks[3].labels.x: could not determine a constructor for the tag '!secret'",
    ]
    path.write_text(
        "\n".join(path.read_text().splitlines()[1:7]).replace("*fast", "{interval: 5s}")
    )
    a, b = load_config(path, env={}).checks
    assert (a.interval, b.interval, b.timeout) == (5.0, 5.0, 2.0)


def test_second_document_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("checks: []\n---\nchecks: []\n", "two.yaml", env={})
    assert [str(p) for p in caught.value.problems] == [
        "two.yaml:2: yaml: expected a single document in the stream"
    ]
