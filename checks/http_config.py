"""Config of the http check: URL, request, expectations, TLS, auth."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from checks.base import CheckConfig
from checks.tls import TlsOptions
from core.names import Regex

MIB = 1024 * 1024
_STATUS = re.compile(r"^(?:[1-5]\d\d|[1-5]xx|[1-5]\d\d-[1-5]\d\d)$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class HttpExpect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Codes (200), classes ("2xx") or ranges ("200-299").
    status: Annotated[tuple[int | str, ...], Field(min_length=1)] = ("2xx",)
    body_regex: Regex | None = None
    body_not_regex: Regex | None = None
    # Header name -> regex searched in its value (names case-insensitive).
    headers: dict[str, Regex] = Field(default_factory=dict)

    @field_validator("status")
    @classmethod
    def _codes(cls, values: tuple[int | str, ...]) -> tuple[int | str, ...]:
        for value in values:
            if not _STATUS.match(str(value)):
                raise ValueError(
                    f"invalid status {value!r}: use a code (200), a class (2xx) "
                    "or a range (200-299)"
                )
        return values

    def status_matcher(self) -> frozenset[int]:
        codes: set[int] = set()
        for value in self.status:
            text = str(value)
            if text.endswith("xx"):
                base = int(text[0]) * 100
                codes.update(range(base, base + 100))
            elif "-" in text:
                low, high = (int(p) for p in text.split("-"))
                codes.update(range(low, high + 1))
            else:
                codes.add(int(text))
        return frozenset(codes)


class BasicAuth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self) -> BasicAuth:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of password or password_file")
        return self


class HttpConfig(CheckConfig):
    type: Literal["http"]
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expect: HttpExpect = Field(default_factory=HttpExpect)
    follow_redirects: bool = True
    max_redirects: Annotated[int, Field(ge=0, le=100)] = 10
    max_body_bytes: Annotated[int, Field(ge=0)] = MIB
    keepalive: bool = False
    tls: TlsOptions = Field(default_factory=TlsOptions)
    basic_auth: BasicAuth | None = None
    ip_version: Literal[4, 6] | None = None

    metric_facts: ClassVar[Mapping[str, str]] = {
        "status_code": "http_status_code",
        "tls_not_after": "tls_cert_not_after_timestamp_seconds",
        "tls_earliest_not_after": "tls_chain_earliest_not_after_timestamp_seconds",
        "resolve_seconds": "http_phase_resolve_seconds",
        "connect_seconds": "http_phase_connect_seconds",
        "tls_seconds": "http_phase_tls_seconds",
        "first_byte_seconds": "http_phase_first_byte_seconds",
        "transfer_seconds": "http_phase_transfer_seconds",
        "redirects": "http_redirects",
        "body_truncated": "http_body_truncated",
    }

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("scheme must be http or https")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("invalid port") from None
        if not parts.hostname:
            raise ValueError("no host")
        return url

    @model_validator(mode="after")
    def _literal_matches_ip_version(self) -> HttpConfig:
        host = urlsplit(self.url).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return self
        if self.ip_version is not None and literal.version != self.ip_version:
            raise ValueError(
                f"ip_version {self.ip_version} but the url's host {host} is IPv{literal.version}"
            )
        return self

    @field_validator("method")
    @classmethod
    def _method(cls, method: str) -> str:
        if not _TOKEN.match(method):
            raise ValueError(f"invalid HTTP method {method!r}")
        return method.upper()
