"""http: one HTTP(S) request (and its redirects) judged against `expect` and TLS rules.

Each check keeps one session, closed by the runtime through `aclose` (on reload,
after its in-flight probe, and at shutdown). With `keepalive: false` (the
default) its connector closes every connection after use, so each probe still
measures connect and TLS like blackbox_exporter does; `keepalive: true` reuses
connections.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import socket
import ssl
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from checks.base import CheckContext, CheckResult, CheckType, critical
from checks.http_config import HttpConfig
from checks.tls import HandshakeLog, TlsSetupError, build_context, chain_facts, expiry_verdict
from checks.tls import explain_failure as explain_tls
from core.durations import format_duration
from core.errors import os_error_text
from core.redact import describe_file, redact_url
from core.status import Status

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDict
    from yarl import URL

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "vaktpost/0.1"
# Our own deadline sits just inside the runner's, so a slow target is reported
# with the phase it was stuck in rather than the runner's generic "timed out".
_DEADLINE_SHARE = 0.97


@dataclass(slots=True)
class Phases:
    """Phase timestamps of the request in flight and summed durations of all hops."""

    dns_start: float = 0.0
    resolve: float = 0.0
    conn_start: float = 0.0
    conn_end: float = 0.0
    connect: float = 0.0
    first_byte: float = 0.0
    transfer: float = 0.0
    waiting: str = "connecting"

    def facts(self, tls_seconds: float) -> dict[str, float]:
        return {
            "resolve_seconds": self.resolve,
            "connect_seconds": max(self.connect - self.resolve - tls_seconds, 0.0),
            "tls_seconds": tls_seconds,
            "first_byte_seconds": self.first_byte,
            "transfer_seconds": self.transfer,
        }


async def _dns_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    ctx.trace_request_ctx.dns_start = time.perf_counter()
    ctx.trace_request_ctx.waiting = "resolving the host"


async def _dns_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    ph: Phases = ctx.trace_request_ctx
    ph.resolve += time.perf_counter() - ph.dns_start
    ph.waiting = "connecting"


async def _conn_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    ctx.trace_request_ctx.conn_start = time.perf_counter()


async def _conn_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    ph: Phases = ctx.trace_request_ctx
    ph.conn_end = time.perf_counter()
    ph.connect += ph.conn_end - ph.conn_start
    ph.waiting = "waiting for the response headers"


def _trace_config() -> aiohttp.TraceConfig:
    import aiohttp

    trace = aiohttp.TraceConfig()
    trace.on_dns_resolvehost_start.append(_dns_start)
    trace.on_dns_resolvehost_end.append(_dns_end)
    trace.on_connection_create_start.append(_conn_start)
    trace.on_connection_create_end.append(_conn_end)
    trace.freeze()
    return trace


@functools.cache
def _trace() -> aiohttp.TraceConfig:
    return _trace_config()  # built on first use: aiohttp loads only when an http check runs


@dataclass(slots=True)
class Reply:
    status: int
    headers: CIMultiDict[str]
    body: str
    truncated: bool
    size: int


class HttpCheck:
    def __init__(self, config: HttpConfig, ctx: CheckContext) -> None:
        from multidict import CIMultiDict

        self.config = config
        self._clock = ctx.clock
        self._expect_codes = config.expect.status_matcher()
        self._body_re = _compile(config.expect.body_regex)
        self._body_not_re = _compile(config.expect.body_not_regex)
        self._header_res = {k: re.compile(v) for k, v in config.expect.headers.items()}
        self._handshakes = HandshakeLog()
        self._ssl: Any = None  # built on the first https hop, then reused
        self._session: aiohttp.ClientSession | None = None
        self._family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(
            config.ip_version or 0, socket.AF_UNSPEC
        )
        self._headers = CIMultiDict({"User-Agent": _USER_AGENT})
        self._headers.update(config.headers)
        self._body = config.body.encode() if config.body is not None else None

    async def run(self) -> CheckResult:
        phases = Phases()
        self._handshakes.clear()
        budget = self.config.timeout * _DEADLINE_SHARE
        try:
            async with asyncio.timeout(budget):
                return await self._probe(phases)
        except TimeoutError:
            return self._finish(
                critical(f"timed out after {format_duration(budget)} {self._stuck(phases)}"),
                phases,
            )
        except TlsSetupError as exc:
            return CheckResult(Status.UNKNOWN, str(exc))
        except OSError as exc:  # password_file unreadable
            where = describe_file(exc.filename)
            return CheckResult(
                Status.UNKNOWN, f"cannot read basic_auth.password_file {where}: {exc.strerror}"
            )

    async def aclose(self) -> None:
        """Closes the check's session; the runtime calls it on reload and at shutdown."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _stuck(self, phases: Phases) -> str:
        last = self._handshakes.last
        if last is not None and last.seconds is None and last.error is None:
            return "during the TLS handshake"
        return phases.waiting

    def _new_session(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            force_close=not self.config.keepalive,
            limit=0,
            family=self._family,
            use_dns_cache=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=[_trace()],
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
        )

    async def _probe(self, phases: Phases) -> CheckResult:
        # One session per check, closed by the runtime through aclose(). With
        # keepalive off its connector closes each connection after use, so every
        # probe still measures connect and TLS, without building a session per probe.
        if self._session is None or self._session.closed:
            self._session = self._new_session()
        return await self._follow(self._session, phases)

    async def _follow(self, session: aiohttp.ClientSession, phases: Phases) -> CheckResult:
        from yarl import URL

        cfg = self.config
        url, method, body = URL(cfg.url, encoded=False), cfg.method, self._body
        auth = self._auth_header()
        seen = [url]
        last: Reply | None = None
        for hops in range(cfg.max_redirects + 1):
            outcome = await self._request(session, method, url, body, auth, phases)
            if isinstance(outcome, CheckResult):
                return self._finish(outcome, phases, hops)
            last = outcome
            location = outcome.headers.get("Location")
            if not (cfg.follow_redirects and outcome.status in _REDIRECTS and location):
                return self._finish(self._judge(outcome, url), phases, hops, outcome)
            target = url.join(URL(location))
            if target in seen:
                chain = " -> ".join(redact_url(u) for u in [*seen, target])
                return self._finish(critical(f"redirect loop: {chain}"), phases, hops, outcome)
            if target.origin() != url.origin():
                auth = None  # credentials are for the configured origin only
            if outcome.status == 303 or (outcome.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            url = target
            seen.append(url)
        return self._finish(
            critical(f"more than {cfg.max_redirects} redirects (last {redact_url(url)})"),
            phases,
            cfg.max_redirects,
            last,
        )

    def _auth_header(self) -> str | None:
        auth = self.config.basic_auth
        if auth is None:
            return None
        if auth.password_file is not None:
            secret = auth.password_file.read_text().rstrip("\r\n")
        else:
            assert auth.password is not None
            secret = auth.password.get_secret_value()
        token = base64.b64encode(f"{auth.username}:{secret}".encode()).decode()
        return f"Basic {token}"

    def _ssl_for(self, url: URL) -> Any:
        if url.scheme != "https":
            return True  # aiohttp's value for "no override"
        if self._ssl is None:
            self._ssl = build_context(self.config.tls, self._handshakes)
        return self._ssl

    async def _request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        body: bytes | None,
        auth: str | None,
        phases: Phases,
    ) -> Reply | CheckResult:
        import aiohttp
        from multidict import CIMultiDict

        headers = self._headers
        if auth is not None:
            headers = CIMultiDict(headers)
            headers["Authorization"] = auth
        server_name = self.config.tls.server_name
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                ssl=self._ssl_for(url),
                server_hostname=server_name if url.scheme == "https" else None,
                trace_request_ctx=phases,
            ) as resp:
                started = time.perf_counter()
                phases.first_byte += started - (phases.conn_end or started)
                phases.waiting = "reading the body"
                reply = await self._read(resp)
                phases.transfer += time.perf_counter() - started
                return reply
        except aiohttp.ClientConnectorCertificateError as exc:
            return self._tls_failure(exc.certificate_error, url)
        except aiohttp.ClientConnectorSSLError as exc:
            return self._tls_failure(exc.os_error, url)
        except aiohttp.ClientConnectorError as exc:
            return critical(
                f"connect to {exc.host}:{exc.port} failed: {os_error_text(exc.os_error)}"
            )
        except aiohttp.ServerDisconnectedError:
            return critical(f"{url.host} closed the connection while {phases.waiting}")
        except aiohttp.ClientResponseError as exc:
            return critical(f"invalid HTTP response from {url.host}: {exc.message}")
        except aiohttp.ClientPayloadError as exc:
            return critical(f"body transfer from {url.host} failed: {exc}")
        except aiohttp.ClientError as exc:
            return critical(f"request to {redact_url(url)} failed: {type(exc).__name__}: {exc}")

    async def _read(self, resp: aiohttp.ClientResponse) -> Reply:
        from multidict import CIMultiDict

        cap, parts, size = self.config.max_body_bytes, [], 0
        while size < cap:
            chunk = await resp.content.read(cap - size)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        truncated = size >= cap and not resp.content.at_eof()
        raw = b"".join(parts)
        # Decode only when a regex needs text: most probes never look at the body.
        text = raw.decode(resp.charset or "utf-8", "replace") if self._needs_text() else ""
        return Reply(resp.status, CIMultiDict(resp.headers), text, truncated, size)

    def _needs_text(self) -> bool:
        return self._body_re is not None or self._body_not_re is not None

    def _tls_failure(self, error: BaseException, url: URL) -> CheckResult:
        host = self.config.tls.server_name or url.host or "?"
        if not isinstance(error, ssl.SSLError):
            return critical(f"TLS handshake with {host} failed: {error}")
        last = self._handshakes.last
        chain = last.chain if last is not None else ()
        return critical(explain_tls(error, chain, host, self._clock()))

    def _judge(self, reply: Reply, url: URL) -> CheckResult:
        shown = redact_url(url)
        if reply.status not in self._expect_codes:
            return critical(f"{shown} returned {reply.status}, expected {_codes(self.config)}")
        for name, pattern in self._header_res.items():
            value = reply.headers.get(name)
            if value is None:
                return critical(f"{shown} response has no {name} header")
            if not pattern.search(value):
                return critical(
                    f"{shown} header {name}: {value!r} does not match {pattern.pattern!r}"
                )
        if self._body_re is not None and not self._body_re.search(reply.body):
            return critical(f"{shown} body does not match {self._body_re.pattern!r}")
        if self._body_not_re is not None and (hit := self._body_not_re.search(reply.body)):
            return critical(
                f"{shown} body matches {self._body_not_re.pattern!r}: {hit.group(0)[:80]!r}"
            )
        message = f"{shown} returned {reply.status}"
        last = self._handshakes.last
        if url.scheme == "https" and last is not None:
            return expiry_verdict(last.chain, self.config.tls, self._clock(), message)
        return CheckResult(Status.OK, message)

    def _finish(
        self, result: CheckResult, phases: Phases, hops: int = 0, reply: Reply | None = None
    ) -> CheckResult:
        facts = phases.facts(self._handshakes.tls_seconds())
        facts["redirects"] = float(hops)
        last = self._handshakes.last
        if last is not None:
            facts.update(chain_facts(last.chain))
            if last.chain:
                facts["tls_days_left"] = round(
                    (facts["tls_earliest_not_after"] - self._clock()) / 86400, 3
                )
        if reply is not None:
            facts["status_code"] = float(reply.status)
            facts["body_bytes"] = float(reply.size)
            facts["body_truncated"] = 1.0 if reply.truncated else 0.0
        message = result.message
        if reply is not None and reply.truncated and result.status is Status.OK:
            message += f" (body read up to max_body_bytes={self.config.max_body_bytes})"
        return CheckResult(result.status, message, facts)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None


def _codes(cfg: HttpConfig) -> str:
    return ", ".join(str(s) for s in cfg.expect.status)


__all__ = ["TYPE", "HttpCheck", "HttpConfig"]

TYPE = CheckType(HttpConfig, HttpCheck)
