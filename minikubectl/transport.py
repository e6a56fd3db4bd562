"""The CLI's narrow way to the API server: JSON requests and watch streams over aiohttp.

It is the only module that speaks HTTP. Failures come out as `ApiError` (the server
answered with a Status) or `CliError` (the server could not be reached), never as
aiohttp's own exceptions.
"""
from __future__ import annotations

import asyncio
import errno
import json
from typing import Any, AsyncIterator

import aiohttp

from minikubectl.errors import CliError, api_error_from_status

Obj = dict[str, Any]
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)


def _why(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    code = getattr(os_error, "errno", None)
    if code == errno.ECONNREFUSED or isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror).lower()
    return str(exc) or type(exc).__name__


class Api:
    """One API server; use as `async with Api(url) as api:`."""

    def __init__(self, server: str, *, insecure: bool = False) -> None:
        self.server = server
        self._ssl: bool | None = False if insecure else None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Api":
        self._session = aiohttp.ClientSession(self.server, timeout=REQUEST_TIMEOUT,
                                              headers={"Accept": "application/json",
                                                       "User-Agent": "minikubectl"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def unreachable(self, exc: BaseException) -> CliError:
        return CliError(f"cannot reach the API server at {self.server}: {_why(exc)}")

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        assert self._session is not None
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self._session.request(method, path, params=params, data=data,
                                             headers=headers, ssl=self._ssl) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self.unreachable(exc) from None
        try:
            decoded: Any = json.loads(text) if text else None
        except ValueError:
            decoded = text
        if status >= 400:
            raise api_error_from_status(decoded, status)
        return decoded

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Obj, patch_type: str) -> Obj:
        return await self.request("PATCH", path, body=body, content_type=patch_type)

    async def delete(self, path: str) -> Obj:
        return await self.request("DELETE", path)

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[Obj]:
        """Watch events (`{"type", "object"}`) until the server ends the stream."""
        assert self._session is not None
        query = {**params, "watch": "true"}
        try:
            async with self._session.get(path, params=query, timeout=WATCH_TIMEOUT,
                                         ssl=self._ssl) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    try:
                        raise api_error_from_status(json.loads(text), resp.status)
                    except ValueError:
                        raise api_error_from_status(text, resp.status) from None
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self.unreachable(exc) from None

    async def stream(self, path: str, params: Any = None,
                     method: str = "GET") -> AsyncIterator[bytes]:
        """A raw response body in chunks as they arrive (`logs -f`, `exec`)."""
        assert self._session is not None
        try:
            async with self._session.request(method, path, params=params, timeout=WATCH_TIMEOUT,
                                             ssl=self._ssl) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    try:
                        decoded: Any = json.loads(text)
                    except ValueError:
                        decoded = text
                    raise api_error_from_status(decoded, resp.status)
                async for chunk in resp.content.iter_any():
                    yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self.unreachable(exc) from None
