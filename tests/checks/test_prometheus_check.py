"""prometheus checks against a real Prometheus (Debian package) scraping a loopback target."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from pydantic import ValidationError

from checks.base import CheckContext, CheckResult, Status
from checks.prometheus import PrometheusCheck, PrometheusConfig
from tests.alerting_fixtures import CI, free_port, wait_for
from tests.signals_fixtures import send

BINARY = shutil.which("prometheus")
PASSWORD = "prom-secret-password"
TARGET = b"""# TYPE demo_load gauge
demo_load{room="a",host="srv1"} 0.5
demo_load{room="b",host="srv2"} 0.95
demo_load{room="c",host="srv3"} 0.7
"""


class Target(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(TARGET)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if BINARY is None:
        if CI:
            pytest.fail("prometheus is not installed (CI=true)")
        pytest.skip("prometheus is not installed")
    tmp = tmp_path_factory.mktemp("prom")
    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (tmp / "web.yml").write_text(f'basic_auth_users:\n  admin: "{hashed}"\n')
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: demo\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target.server_port}']}}]\n"
    )
    (tmp / "password").write_text(PASSWORD + "\n")
    port = free_port()
    log = (tmp / "prom.log").open("ab")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={tmp / 'web.yml'}",
        ],
        stdout=log,
        stderr=log,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}

    def scraped() -> bool:
        assert proc.poll() is None, (tmp / "prom.log").read_text()
        query = urllib.parse.quote("count(demo_load)")
        try:
            _, data, _ = send(f"{url}/api/v1/query?query={query}", headers=auth)
        except OSError:
            return False
        return bool(data.get("data", {}).get("result"))

    try:
        wait_for(scraped, 30, "prometheus scraped the target", every=0.2)
        yield {"url": url, "password_file": str(tmp / "password")}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        target.shutdown()


def run(prom: dict[str, Any], query: str, **keys: Any) -> CheckResult:
    config = PrometheusConfig.model_validate(
        {
            "name": "q",
            "type": "prometheus",
            "url": prom["url"],
            "query": query,
            "basic_auth": {"username": "admin", "password_file": prom["password_file"]},
            **keys,
        }
    )
    ctx = CheckContext(Path("/nonexistent"), "t")
    return asyncio.run(PrometheusCheck(config, ctx).run())


def test_worst_sample_decides_and_is_named(prom: dict[str, Any]) -> None:
    result = run(prom, "demo_load", critical="> 0.9", warning="> 0.6")
    assert result.status is Status.CRITICAL
    instance = result.message.split('instance="', 1)[1].split('"')[0]
    assert result.message == (
        '1 of 3 series critical; worst 0.95 > 0.9 demo_load{host="srv2", '
        f'instance="{instance}", job="demo", room="b"}}'
    )
    assert 'room="b"' in result.message and result.facts == {"series": 3.0, "value": 0.95}
    warn = run(prom, "demo_load", critical="> 0.99", warning="> 0.6")
    assert warn.status is Status.WARNING and warn.message.startswith(
        "2 of 3 series warning; worst 0.95"
    )
    low = run(prom, "demo_load", critical={"op": "<", "value": 0.6})
    assert low.status is Status.CRITICAL and 'room="a"' in low.message
    fine = run(prom, "demo_load", critical="< 0.1")
    assert fine.status is Status.OK and fine.message.startswith("3 series within thresholds")


def test_scalar_and_alert_style_queries(prom: dict[str, Any]) -> None:
    assert run(prom, "scalar(count(demo_load))", critical="== 3").status is Status.CRITICAL
    rule = run(prom, "demo_load > 0.9")  # no thresholds: any series is a finding
    assert rule.status is Status.CRITICAL and 'room="b"' in rule.message


def test_empty_result(prom: dict[str, Any]) -> None:
    default = run(prom, "demo_load > 2")
    assert (default.status, default.message) == (Status.UNKNOWN, "no series (empty: unknown)")
    assert run(prom, "demo_load > 2", empty="ok").status is Status.OK
    assert run(prom, "demo_load > 2", empty="critical").status is Status.CRITICAL


def test_query_errors_and_unreachable_are_unknown(prom: dict[str, Any]) -> None:
    broken = run(prom, "demo_load[", critical="> 1")
    assert broken.status is Status.UNKNOWN and broken.message.startswith("query failed (bad_data):")
    matrix = run(prom, "demo_load[1m]", critical="> 1")
    assert matrix.message == "the query returns a range vector: use an instant vector"
    config = PrometheusConfig(
        name="q", type="prometheus", url=prom["url"], query="up", critical="> 1"
    )
    refused = asyncio.run(PrometheusCheck(config, CheckContext(Path("/x"), "t")).run())
    assert (refused.status, refused.message) == (
        Status.UNKNOWN,
        "HTTP 401 without a Prometheus answer",
    )
    closed = config.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
    gone = asyncio.run(PrometheusCheck(closed, CheckContext(Path("/x"), "t")).run())
    assert (gone.status, gone.message) == (
        Status.UNKNOWN,
        "cannot reach Prometheus: connection refused",
    )
    assert PASSWORD not in broken.message + refused.message


def test_comparisons_are_checked_at_load() -> None:
    for bad in ("above 3", "> x", ">> 1", ""):
        with pytest.raises(ValidationError, match="invalid comparison"):
            PrometheusConfig.model_validate(
                {
                    "name": "q",
                    "type": "prometheus",
                    "url": "http://prometheus.invalid:9090",
                    "query": "up",
                    "critical": bad,
                }
            )
