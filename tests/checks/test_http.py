"""http check against real loopback servers: statuses, redirects, bodies, auth, failures."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from checks.base import Status
from checks.http import HttpConfig
from tests.net_fixtures import probe
from tests.net_servers import AUTH_PASSWORD, AUTH_USER, Targets, has_ipv6_loopback, require


async def test_200_is_ok_with_status_and_phase_facts(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=targets.url("/ok"))
    assert r.status is Status.OK, r.message
    assert r.facts["status_code"] == 200
    assert r.facts["connect_seconds"] > 0
    assert r.facts["first_byte_seconds"] > 0
    assert r.facts["tls_seconds"] == 0
    assert r.facts["body_truncated"] == 0


async def test_500_is_critical_naming_the_code(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=targets.url("/status/500"))
    assert r.status is Status.CRITICAL
    assert "returned 500, expected 2xx" in r.message
    assert r.facts["status_code"] == 500


@pytest.mark.parametrize(
    ("status", "expected"),
    [(["5xx"], Status.OK), ([500], Status.OK), (["400-599"], Status.OK), ([200], Status.CRITICAL)],
)
async def test_expected_status_codes_classes_and_ranges(
    targets: Targets, status: list[object], expected: Status
) -> None:
    r = await probe(
        HttpConfig, type="http", url=targets.url("/status/500"), expect={"status": status}
    )
    assert r.status is expected, r.message


async def test_redirect_chain_is_followed(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=targets.url("/redirect/3"))
    assert r.status is Status.OK, r.message
    assert r.facts["redirects"] == 3
    assert r.facts["status_code"] == 200
    assert "/ok returned 200" in r.message


async def test_redirect_limit(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=targets.url("/redirect/3"), max_redirects=2)
    assert r.status is Status.CRITICAL
    assert "more than 2 redirects" in r.message


async def test_redirects_not_followed_when_disabled(targets: Targets) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.url("/redirect/3"),
        follow_redirects=False,
        expect={"status": [302]},
    )
    assert r.status is Status.OK, r.message
    assert r.facts["status_code"] == 302


async def test_redirect_loop_fails(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=targets.url("/loop/a"))
    assert r.status is Status.CRITICAL
    assert "redirect loop" in r.message
    assert "/loop/a -> " in r.message


async def test_slow_server_verdict_within_timeout_plus_10_percent(targets: Targets) -> None:
    start = time.perf_counter()
    r = await probe(HttpConfig, type="http", url=targets.url("/slow"), timeout="500ms")
    elapsed = time.perf_counter() - start
    assert r.status is Status.CRITICAL
    assert "timed out" in r.message
    assert "waiting for the response headers" in r.message
    assert elapsed <= 0.55


async def test_silent_server_times_out(targets: Targets) -> None:
    start = time.perf_counter()
    r = await probe(
        HttpConfig, type="http", url=f"http://127.0.0.1:{targets.silent}/", timeout="500ms"
    )
    assert r.status is Status.CRITICAL
    assert "timed out" in r.message
    assert time.perf_counter() - start <= 0.55


async def test_garbage_instead_of_http(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=f"http://127.0.0.1:{targets.garbage}/")
    assert r.status is Status.CRITICAL
    assert "invalid HTTP response" in r.message or "closed the connection" in r.message


async def test_closed_port_is_critical(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=f"http://127.0.0.1:{targets.closed}/")
    assert r.status is Status.CRITICAL
    assert f"connect to 127.0.0.1:{targets.closed} failed" in r.message


async def test_100mb_body_is_capped_and_memory_stays_bounded(targets: Targets) -> None:
    rss_before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    r = await probe(HttpConfig, type="http", url=targets.url("/big"), timeout="10s")
    assert r.status is Status.OK, r.message
    assert r.facts["body_truncated"] == 1
    assert r.facts["body_bytes"] == 1024 * 1024
    assert "max_body_bytes" in r.message
    assert time.perf_counter() - start < 5  # it stopped reading, far from 100 MB
    assert psutil.Process().memory_info().rss - rss_before < 40 * 1024 * 1024


async def test_small_cap_still_matches_what_was_read(targets: Targets) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.url("/ok"),
        max_body_bytes=8,
        expect={"body_regex": "^OK: vak"},
    )
    assert r.status is Status.OK, r.message
    assert r.facts["body_truncated"] == 1


async def test_gzip_body_is_decompressed_for_matching(targets: Targets) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.url("/gzip"),
        expect={"body_regex": "compressed hello", "headers": {"content-encoding": "gzip"}},
    )
    assert r.status is Status.OK, r.message
    assert r.facts["body_bytes"] == len("compressed hello " * 200)


async def test_body_regex_match_and_mismatch(targets: Targets) -> None:
    good = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"body_regex": "test target"}
    )
    bad = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"body_regex": "^Maintenance"}
    )
    assert good.status is Status.OK
    assert bad.status is Status.CRITICAL
    assert "body does not match '^Maintenance'" in bad.message


async def test_body_not_regex(targets: Targets) -> None:
    r = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"body_not_regex": "vaktpost"}
    )
    assert r.status is Status.CRITICAL
    assert "body matches 'vaktpost'" in r.message


async def test_header_expectations(targets: Targets) -> None:
    good = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"headers": {"x-test": "^yes$"}}
    )
    wrong = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"headers": {"X-Test": "no"}}
    )
    missing = await probe(
        HttpConfig, type="http", url=targets.url("/ok"), expect={"headers": {"X-Gone": "."}}
    )
    assert good.status is Status.OK, good.message
    assert wrong.status is Status.CRITICAL and "does not match" in wrong.message
    assert missing.status is Status.CRITICAL and "no X-Gone header" in missing.message


async def test_method_headers_and_body_are_sent(targets: Targets) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.url("/echo"),
        method="post",
        body="ping",
        headers={"X-Probe": "hej"},
        expect={"body_regex": "^POST ping hej$"},
    )
    assert r.status is Status.OK, r.message


async def test_basic_auth_inline_and_from_file(targets: Targets, tmp_path: Path) -> None:
    url = targets.url("/auth")
    without = await probe(HttpConfig, type="http", url=url)
    inline = await probe(
        HttpConfig,
        type="http",
        url=url,
        basic_auth={"username": AUTH_USER, "password": AUTH_PASSWORD},
    )
    secret = tmp_path / "pw"
    secret.write_text(AUTH_PASSWORD + "\n")
    from_file = await probe(
        HttpConfig,
        type="http",
        url=url,
        basic_auth={"username": AUTH_USER, "password_file": str(secret)},
    )
    wrong = await probe(
        HttpConfig, type="http", url=url, basic_auth={"username": AUTH_USER, "password": "nope"}
    )
    assert without.status is Status.CRITICAL and without.facts["status_code"] == 401
    assert inline.status is Status.OK, inline.message
    assert from_file.status is Status.OK, from_file.message
    assert wrong.status is Status.CRITICAL
    for r in (without, inline, from_file, wrong):
        assert AUTH_PASSWORD not in r.message


def test_password_never_in_config_repr() -> None:
    cfg = HttpConfig.model_validate(
        {
            "name": "x",
            "type": "http",
            "url": "http://127.0.0.1/",
            "basic_auth": {"username": "u", "password": "topsecret"},
        }
    )
    assert "topsecret" not in repr(cfg)
    assert "topsecret" not in cfg.model_dump_json()


async def test_unreadable_password_file_is_unknown(targets: Targets, tmp_path: Path) -> None:
    r = await probe(
        HttpConfig,
        type="http",
        url=targets.url("/auth"),
        basic_auth={"username": "u", "password_file": str(tmp_path / "missing")},
    )
    assert r.status is Status.UNKNOWN
    assert "cannot read" in r.message


async def test_ipv6_loopback(targets: Targets) -> None:
    require(has_ipv6_loopback(), "IPv6 loopback")
    r = await probe(HttpConfig, type="http", url=f"http://[::1]:{targets.http6}/ok", ip_version=6)
    assert r.status is Status.OK, r.message


async def test_ip_version_6_to_a_v4_only_name_fails(targets: Targets) -> None:
    r = await probe(HttpConfig, type="http", url=f"http://127.0.0.1:{targets.http}/ok")
    assert r.status is Status.OK
    v6 = await probe(
        HttpConfig, type="http", url=f"http://v4only.invalid:{targets.http}/ok", ip_version=6
    )
    assert v6.status is Status.CRITICAL


async def test_keepalive_reuses_the_connection(targets: Targets) -> None:
    from checks.registry import build
    from tests.net_fixtures import config, context

    check = build(
        config(HttpConfig, type="http", url=targets.url("/ok"), keepalive=True), context()
    )
    try:
        first = await check.run()
        second = await check.run()
    finally:
        await check.aclose()  # type: ignore[attr-defined]
    assert first.status is second.status is Status.OK
    assert first.facts["connect_seconds"] > 0
    assert second.facts["connect_seconds"] == 0  # no new connection


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"url": "ftp://x/"}, "scheme must be http or https"),
        ({"url": "http:///x"}, "no host"),
        ({"url": "http://a.invalid/", "expect": {"status": ["2x"]}}, "invalid status '2x'"),
        ({"url": "http://a.invalid/", "expect": {"body_regex": "("}}, "invalid regex"),
        ({"url": "http://a.invalid/", "basic_auth": {"username": "u"}}, "exactly one of password"),
        (
            {"url": "http://a.invalid/", "tls": {"warn_days": 3, "critical_days": 5}},
            "must not exceed",
        ),
        ({"url": "http://a.invalid/", "tls": {"key_file": "/k"}}, "key_file needs cert_file"),
        ({"url": "http://a.invalid/", "ip_version": 5}, "ip_version"),
        ({"url": "http://[::1]/", "ip_version": 4}, "ip_version 4 but the url's host ::1 is IPv6"),
        ({"url": "http://a.invalid/", "bogus": 1}, "bogus"),
    ],
)
def test_config_errors(keys: dict[str, object], error: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        HttpConfig.model_validate({"name": "x", "type": "http", **keys})
    assert error in str(info.value)
