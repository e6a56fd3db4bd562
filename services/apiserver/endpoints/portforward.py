"""pods/<name>/portforward: the client's stream relayed, byte for byte, to the node agent.

As kube-apiserver: the agent speaks SPDY/3.1 `portforward.k8s.io` (`kubecore.api.portforward`)
and the API server never looks inside. It first upgrades its own connection to the agent
(`POST /portForward/<ns>/<pod>`, `Upgrade: SPDY/3.1`); only when the agent switched protocols is
the client's upgrade accepted, so an agent's refusal reaches the client as the agent's Status.
Then:

- a client that upgraded to `SPDY/3.1` (kubectl up to 1.30) gets the agent's 101 and its bytes
  are copied to the agent and back unchanged (kube's UpgradeAwareHandler);
- a client that opened a WebSocket of subprotocol `SPDY/3.1+portforward.k8s.io` (kubectl
  1.31+) sends the same SPDY bytes as binary messages: each message's payload goes to the agent,
  what the agent sends comes back as binary messages (kube's TunnelingHandler).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from kubecore.api import portforward as pf
from kubecore.api.errors import ApiError, bad_request
from kubecore.controller import upgrade

MAX_RESPONSE_HEAD = 64 * 1024
MAX_ERROR_BODY = 64 * 1024
READ_CHUNK = 64 * 1024
HEARTBEAT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Dial = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class Upstream:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


def requested_mode(request: web.Request) -> str | None:
    """"websocket" (kubectl 1.31+), "spdy" (up to 1.30), or None for no usable upgrade."""
    if upgrade.is_upgrade(request.headers, "websocket"):
        return "websocket"
    if upgrade.is_upgrade(request.headers, pf.SPDY_UPGRADE):
        return "spdy"
    return None


def websocket_protocols(request: web.Request) -> list[str]:
    return [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", []) for p in v.split(",")
            if p.strip()]


def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """The status and headers (names lowercased, the first of repeated ones) of an HTTP/1.1 response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return int(parts[1]), headers


async def open_upstream(dial: Dial, host: str, path: str, protocol: str = pf.PROTOCOL_V1) -> Upstream:
    """The agent's connection after its answer to our SPDY upgrade request for `protocol`
    (`path` with its query, already encoded)."""
    reader, writer = await dial()
    try:
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n"
                      f"Upgrade: {pf.SPDY_UPGRADE}\r\n{pf.STREAM_PROTOCOL_HEADER}: {protocol}\r\n"
                      "Content-Length: 0\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_RESPONSE_HEAD:
            raise ValueError("the node agent's response head is too large")
        status, headers = parse_response_head(head[:-4])
    except BaseException:
        writer.close()
        raise
    return Upstream(status, headers, reader, writer)


async def error_response(up: Upstream) -> web.Response:
    """The agent's refusal as the client's answer: its Status when it sent one."""
    try:
        length = min(int(up.headers.get("content-length", "0") or 0), MAX_ERROR_BODY)
        body = await asyncio.wait_for(up.reader.readexactly(length), 10.0) if length else b""
    except (ValueError, TimeoutError, asyncio.IncompleteReadError):
        body = b""
    finally:
        up.writer.close()
    try:
        status: Any = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return web.Response(status=up.status, body=body, content_type="application/json")
    raise ApiError(up.status if up.status >= 400 else 502, "InternalError",
                   body.decode(errors="replace")[:500] or f"the node agent answered {up.status} to port forwarding")


async def relay(request: web.Request, up: Upstream, mode: str) -> web.StreamResponse:
    """Accept the client's upgrade (the agent's already switched) and copy bytes until either side ends."""
    try:
        if mode == "spdy":
            return await _relay_spdy(request, up)
        return await _relay_websocket(request, up)
    finally:
        up.writer.close()


async def _relay_spdy(request: web.Request, up: Upstream) -> web.StreamResponse:
    """The agent's 101 (and its chosen protocol) to the client, then bytes both ways: also
    exec and attach of SPDY clients (kubectl up to 1.29)."""
    chosen = up.headers.get(pf.STREAM_PROTOCOL_HEADER.lower(), pf.PROTOCOL_V1)
    client = await upgrade.accept(request, pf.SPDY_UPGRADE, {pf.STREAM_PROTOCOL_HEADER: chosen})

    async def to_agent() -> None:
        while data := await client.reader.read(READ_CHUNK):
            up.writer.write(data)
            await up.writer.drain()

    async def to_client() -> None:
        while data := await up.reader.read(READ_CHUNK):
            await client.write(data)

    try:
        await _both(to_agent(), to_client())
    finally:
        client.close()
    return web.Response()  # never sent: the connection was taken over


async def _relay_websocket(request: web.Request, up: Upstream) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(pf.WEBSOCKET_TUNNEL_PROTOCOL,), heartbeat=HEARTBEAT_SECONDS,
                               max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)

    async def to_agent() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                up.writer.write(msg.data)
                await up.writer.drain()

    async def to_client() -> None:
        while data := await up.reader.read(READ_CHUNK):
            await ws.send_bytes(data)

    try:
        await _both(to_agent(), to_client())
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
    return ws


async def _both(a: Awaitable[None], b: Awaitable[None]) -> None:
    """Run both directions; when one ends (a side closed), the other is stopped."""
    tasks = [asyncio.ensure_future(a), asyncio.ensure_future(b)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def check_websocket(request: web.Request) -> None:
    """A WebSocket port forward must offer the tunneling subprotocol (kube: 400 otherwise)."""
    if pf.WEBSOCKET_TUNNEL_PROTOCOL not in websocket_protocols(request):
        raise bad_request("unable to upgrade: no tunneling spdy protocols provided")
