"""prometheus: a PromQL instant query; thresholds judge every returned sample, the worst decides.

Without `warning` and `critical` the query is an alert rule's expression: any
returned series is critical. A query error, an HTTP error or an unreachable
server is `unknown` with the reason (the fact is missing, not bad).
"""

from __future__ import annotations

import asyncio
import base64
import math
import operator
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

from checks.base import CheckConfig, CheckContext, CheckResult, CheckType, unknown
from checks.http_config import BasicAuth
from core.errors import os_error_text
from core.redact import describe_file
from core.status import Status, worst

if TYPE_CHECKING:
    pass

MAX_BODY = 4 * 1024 * 1024
MAX_LABELS_SHOWN = 8
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_COMPARISON = re.compile(
    r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


class Comparison(BaseModel):
    """`> 0.9`: a sample is bad when `value OP threshold` holds (NaN never does)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float

    def holds(self, sample: float) -> bool:
        return not math.isnan(sample) and _OPS[self.op](sample, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def _parse_comparison(value: object) -> object:
    if not isinstance(value, str):
        return value
    match = _COMPARISON.match(value)
    if not match:
        raise ValueError("invalid comparison: use an operator and a number, e.g. '> 0.9'")
    return {"op": match.group(1), "value": float(match.group(2))}


ComparisonText = Annotated[Comparison, BeforeValidator(_parse_comparison)]


class PrometheusConfig(CheckConfig):
    type: Literal["prometheus"]
    url: str  # Prometheus' base URL, e.g. http://127.0.0.1:9090
    query: str
    warning: ComparisonText | None = None
    critical: ComparisonText | None = None
    empty: Literal["ok", "warning", "critical", "unknown"] = "unknown"
    basic_auth: BasicAuth | None = None
    bearer_token_file: Path | None = None
    ca_file: Path | None = None
    tls_verify: bool = True

    metric_facts: ClassVar[Mapping[str, str]] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use http(s)://host:port of the Prometheus server")
        if parts.query or parts.fragment:
            raise ValueError("the base URL takes no query: the check adds /api/v1/query")
        return url

    @field_validator("query")
    @classmethod
    def _query(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("empty query")
        return query

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusConfig:
        if self.basic_auth is not None and self.bearer_token_file is not None:
            raise ValueError("set basic_auth or bearer_token_file, not both")
        return self


class QueryError(Exception):
    """Why no samples could be had; becomes an `unknown` result."""


Sample = tuple[dict[str, str], float]


def samples_of(data: Any) -> list[Sample]:
    """Samples of an instant query's `data`; QueryError for a shape that has none."""
    if not isinstance(data, dict):
        raise QueryError("answer without data")
    kind = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "vector":
            return [(dict(s.get("metric") or {}), float(s["value"][1])) for s in result]
        if kind == "scalar":
            return [({}, float(result[1]))]
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        raise QueryError(f"malformed {kind} in the answer") from None
    if kind == "matrix":
        raise QueryError("the query returns a range vector: use an instant vector")
    raise QueryError(f"the query returns a {kind}, not a number")


def labels_text(labels: Mapping[str, str]) -> str:
    """PromQL's own notation: `demo_load{host="srv2", job="node"}`."""
    name = labels.get("__name__", "")
    items = sorted((k, v) for k, v in labels.items() if k != "__name__")
    shown = ", ".join(f'{k}="{v}"' for k, v in items[:MAX_LABELS_SHOWN])
    more = f", +{len(items) - MAX_LABELS_SHOWN} more" if len(items) > MAX_LABELS_SHOWN else ""
    return name + "{" + shown + more + "}"


def judge(config: PrometheusConfig, samples: list[Sample]) -> CheckResult:
    if not samples:
        status = Status.parse(config.empty)
        return CheckResult(status, f"no series (empty: {config.empty})", {"series": 0.0})
    graded = [(_grade(config, value), labels, value) for labels, value in samples]
    bad = worst([g for g, _l, _v in graded])
    candidates = [(labels, value) for g, labels, value in graded if g is bad]
    rule = config.critical if bad is Status.CRITICAL else config.warning
    rule = rule or config.critical or config.warning
    labels, value = max(candidates, key=lambda s: _extremity(rule, s[1]))
    facts = {"series": float(len(samples)), "value": value}
    where = labels_text(labels)
    if config.warning is None and config.critical is None:
        return CheckResult(bad, f"{len(samples)} series returned; {value:g} {where}", facts)
    if bad is Status.OK:
        return CheckResult(
            bad, f"{len(samples)} series within thresholds; worst {value:g} {where}", facts
        )
    count = len(candidates)
    return CheckResult(
        bad, f"{count} of {len(samples)} series {bad.label}; worst {value:g} {rule} {where}", facts
    )


def _grade(config: PrometheusConfig, value: float) -> Status:
    if config.warning is None and config.critical is None:
        return Status.CRITICAL
    if config.critical is not None and config.critical.holds(value):
        return Status.CRITICAL
    if config.warning is not None and config.warning.holds(value):
        return Status.WARNING
    return Status.OK


def _extremity(rule: Comparison | None, value: float) -> float:
    if math.isnan(value):
        return -math.inf
    if rule is not None and rule.op in ("<", "<="):
        return -value
    return value


class PrometheusCheck:
    def __init__(self, config: PrometheusConfig, ctx: CheckContext) -> None:
        self.config = config
        self.ctx = ctx

    async def run(self) -> CheckResult:
        try:
            data = await self.query()
            return judge(self.config, samples_of(data))
        except QueryError as exc:
            return unknown(str(exc))

    async def headers(self) -> dict[str, str]:
        config = self.config
        try:
            if config.bearer_token_file is not None:
                token = await asyncio.to_thread(config.bearer_token_file.read_text, "utf-8")
                return {"Authorization": f"Bearer {token.strip()}"}
            if config.basic_auth is not None:
                auth = config.basic_auth
                if auth.password_file is not None:
                    password = await asyncio.to_thread(auth.password_file.read_text, "utf-8")
                    password = password.strip()
                else:
                    assert auth.password is not None
                    password = auth.password.get_secret_value()
                pair = base64.b64encode(f"{auth.username}:{password}".encode()).decode()
                return {"Authorization": f"Basic {pair}"}
        except OSError as exc:
            file = describe_file(exc.filename)
            raise QueryError(f"cannot read credentials {file}: {os_error_text(exc)}") from None
        return {}

    def tls(self) -> ssl.SSLContext | bool:
        if not self.config.tls_verify:
            return False
        if self.config.ca_file is None:
            return True
        try:
            return ssl.create_default_context(cafile=str(self.config.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise QueryError(f"cannot load ca_file: {exc}") from None

    async def query(self) -> Any:
        import aiohttp

        url = self.config.url.rstrip("/") + "/api/v1/query"
        headers = await self.headers()
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    url, params={"query": self.config.query}, headers=headers, ssl=self.tls()
                ) as response,
            ):
                raw = await response.content.read(MAX_BODY + 1)
                status = response.status
        except (aiohttp.ClientConnectorError, OSError) as exc:
            inner = getattr(exc, "os_error", exc)
            text = os_error_text(inner) if isinstance(inner, OSError) else str(exc)
            raise QueryError(f"cannot reach Prometheus: {text}") from None
        except aiohttp.ClientError as exc:
            raise QueryError(f"Prometheus query failed: {type(exc).__name__}") from None
        return answer_data(status, raw)


def answer_data(status: int, raw: bytes) -> Any:
    import json

    if len(raw) > MAX_BODY:
        raise QueryError(f"answer over {MAX_BODY // (1024 * 1024)} MiB")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise QueryError(f"HTTP {status} without a Prometheus answer") from None
    if not isinstance(body, dict):
        raise QueryError(f"HTTP {status} without a Prometheus answer")
    if body.get("status") != "success":
        kind = str(body.get("errorType") or f"HTTP {status}")[:40]
        error = " ".join(str(body.get("error") or "no reason given").split())[:300]
        raise QueryError(f"query failed ({kind}): {error}")
    return body.get("data")


TYPE = CheckType(PrometheusConfig, PrometheusCheck)
