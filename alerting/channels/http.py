"""One POST with a timeout, its failure classified. Shared by webhook and alertmanager."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from alerting.channels.interface import (
    PermanentError,
    RetryableError,
    classify_status,
    safe_url,
)

if TYPE_CHECKING:
    import aiohttp


class HttpPoster:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        import aiohttp

        where = safe_url(url)
        try:
            async with self.session().post(url, data=body, headers=headers) as response:
                await response.read()
                error = classify_status(response.status, where)
        except TimeoutError:
            raise RetryableError(f"{where}: timed out after {self.timeout:g}s") from None
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            # The exception text can contain the full URL: keep only its type.
            raise RetryableError(f"{where}: {type(exc).__name__}") from None
        except ValueError:  # e.g. an Authorization header and credentials in the URL
            raise PermanentError(f"{where}: invalid request (check url and headers)") from None
        if error is not None:
            raise error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
