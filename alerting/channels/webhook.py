"""webhook: the JSON payload, signed with HMAC-SHA256 over the body."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from alerting.channels.base import ChannelConfig
from alerting.channels.http import HttpPoster
from alerting.channels.interface import PermanentError

SIGNATURE_HEADER = "X-Vaktpost-Signature"


class WebhookConfig(ChannelConfig):
    type: Literal["webhook"]
    url: str
    hmac_secret_file: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name = name
        self.config = config
        self.http = HttpPoster(config.timeout)

    def _secret(self) -> bytes | None:
        # Read on every send, so a rotated key file takes effect without a reload.
        if self.config.hmac_secret_file is None:
            return None
        try:
            return Path(self.config.hmac_secret_file).read_bytes().strip()
        except OSError as exc:
            raise PermanentError(f"cannot read hmac_secret_file: {exc.strerror}") from None

    async def send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **self.config.headers}
        secret = self._secret()
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        await self.http.post(self.config.url, body, headers)

    async def close(self) -> None:
        await self.http.close()
