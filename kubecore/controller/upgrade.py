"""An HTTP connection upgraded to a protocol aiohttp does not know (`Upgrade: SPDY/3.1`).

aiohttp's server takes over a connection only for WebSockets. kubelet's and kube-apiserver's
streaming endpoints also answer `101 Switching Protocols` to `Upgrade: SPDY/3.1`, after which
the connection carries raw SPDY frames. `accept` does that inside an aiohttp handler: it
hands the connection's further bytes to a StreamReader (set as the connection's payload
parser before the 101 is sent, so no byte the client sends after it is taken for HTTP) and
writes raw bytes after the 101. The handler keeps the connection until it returns; the
connection is then closed, never reused for another request.

Shared by the API server (which relays the upgraded bytes to the node agent) and the node
agent (which speaks SPDY on them).
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

READ_LIMIT = 256 * 1024  # bytes read ahead before the socket is paused


class _Feed:
    """aiohttp's payload-parser interface, feeding a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class Upgraded:
    """The connection after the 101: `reader` for what comes in, `write` for what goes out."""

    def __init__(self, request: web.Request, response: web.StreamResponse, reader: asyncio.StreamReader) -> None:
        self._request, self._response, self.reader = request, response, reader

    async def write(self, data: bytes) -> None:
        await self._response.write(data)

    def close(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()


def is_upgrade(headers: Mapping[str, str], protocol: str) -> bool:
    connection = [t.strip().lower() for t in headers.get("Connection", "").split(",")]
    return "upgrade" in connection and headers.get("Upgrade", "").strip().lower() == protocol.lower()


async def accept(request: web.Request, protocol: str, headers: Mapping[str, str] | None = None) -> Upgraded:
    """Answer 101 switching to `protocol`, with `headers`; the upgraded connection."""
    transport, handler = request.transport, request.protocol
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away before the upgrade")
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    reader.set_transport(transport)
    handler.set_parser(_Feed(reader))  # type: ignore[arg-type]  # duck-typed like its WebSocketReader
    response = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": protocol,
                                                      **(headers or {})})
    response.force_close()
    await response.prepare(request)
    return Upgraded(request, response, reader)
