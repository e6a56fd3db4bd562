"""The CLI's narrow way to the API server.

JSON requests and watches go through the project's client (`kubecore.client.rest`); the raw
streams of `logs` and `exec` through a session of this module. Failures come out as
`ApiError` (the server answered with a Status) or `CliError` naming the server's
address (it could not be reached), never as aiohttp's own exceptions.
"""
from __future__ import annotations

import asyncio
import errno
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.client.config import ClientConfig
from kubecore.client.rest import ApiClient, ApiUnavailable
from minikubectl.errors import CliError, api_error_from_status

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
    """One API server; use as `async with Api(config) as api:`."""

    def __init__(self, config: ClientConfig | str) -> None:
        self.config = ClientConfig(server=config) if isinstance(config, str) else config
        self.server = self.config.server
        self._session: aiohttp.ClientSession | None = None
        self._client: ApiClient | None = None

    async def __aenter__(self) -> Api:
        try:
            ctx = self.config.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise CliError(f"cannot load the TLS files of the kubeconfig: {exc}") from None
        self._client = ApiClient(self.config, timeout=60, connect_timeout=10)
        self._session = aiohttp.ClientSession(self.server, timeout=REQUEST_TIMEOUT,
                                              connector=aiohttp.TCPConnector(ssl=ctx if ctx else True),
                                              headers={"Accept": "application/json",
                                                       "User-Agent": "minikubectl",
                                                       **self.config.headers()})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._client is not None:
            await self._client.close()

    def unreachable(self, exc: BaseException) -> CliError:
        return CliError(f"cannot reach the API server at {self.server}: {_why(exc)}")

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        assert self._client is not None
        try:
            return await self._client.request(method, path, params=params, body=body,
                                              content_type=content_type)
        except ApiUnavailable as exc:
            raise self.unreachable(exc.__cause__ or exc) from None

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Obj, patch_type: str) -> Obj:
        return await self.request("PATCH", path, body=body, content_type=patch_type)

    async def delete(self, path: str, options: Obj | None = None) -> Obj:
        """DELETE, with a DeleteOptions body when given (as kubectl sends it)."""
        return await self.request("DELETE", path, body=options)

    async def watch(self, rt: ResourceType, namespace: str | None, *, resource_version: str,
                    label_selector: str | None, field_selector: str | None) -> AsyncIterator[Obj]:
        """Watch events (`{"type", "object"}`) until the server ends the stream; an ERROR
        event raises (`Expired` for a 410)."""
        assert self._client is not None
        events = self._client.watch(rt, namespace, resource_version=resource_version,
                                    label_selector=label_selector, field_selector=field_selector)
        try:
            async for event in events:
                yield {"type": event.type, "object": event.object}
        except ApiUnavailable as exc:
            raise self.unreachable(exc.__cause__ or exc) from None
        finally:
            await events.aclose()

    async def stream(self, path: str, params: Any = None,
                     method: str = "GET") -> AsyncIterator[bytes]:
        """A raw response body in chunks as they arrive (`logs -f`, `exec`)."""
        assert self._session is not None
        try:
            async with self._session.request(method, path, params=params,
                                             timeout=WATCH_TIMEOUT) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    try:
                        decoded: Any = json.loads(text)
                    except ValueError:
                        decoded = text
                    raise api_error_from_status(decoded, resp.status)
                async for chunk in resp.content.iter_any():
                    yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.unreachable(exc) from None
