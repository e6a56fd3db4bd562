"""The agent's port forwarding: POST (or GET) /portForward/{namespace}/{pod} upgraded to SPDY/3.1.

As kubelet's CRI streaming server with containerd: the connection speaks
`portforward.k8s.io` (`kubecore.api.portforward`); each complete pair of streams is one TCP
connection to `localhost:<port>` made inside the pod sandbox's network namespace (so a server
listening only on the pod's loopback is reached too), and bytes are copied both ways until the
pod side ends. A failure is written as one line on the pair's error stream, which kubectl
prints and carries on (other connections are unaffected).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from kubecore.api import portforward as pf
from kubecore.controller import upgrade
from services.nodeagent import netns, spdyconn
from services.nodeagent.agent import Agent, PodNotHere
from services.nodeagent.httpstatus import status_response
from services.nodeagent.runtime import SandboxInfo

log = logging.getLogger("nodeagent.portforward")
CONNECT_TIMEOUT = 10.0
READ_CHUNK = 32 * 1024


async def serve(request: web.Request, agent: Agent) -> web.StreamResponse:
    ns, name = request.match_info["namespace"], request.match_info["pod"]
    if not upgrade.is_upgrade(request.headers, pf.SPDY_UPGRADE):
        return status_response(400, "BadRequest", "port forwarding needs an upgrade to SPDY/3.1 "
                       f"({pf.STREAM_PROTOCOL_HEADER}: {pf.PROTOCOL_V1})")
    offered = [p.strip() for p in request.headers.getall(pf.STREAM_PROTOCOL_HEADER, [])
               for p in p.split(",") if p.strip()]
    if offered and pf.PROTOCOL_V1 not in offered:
        # httpstream.Handshake: no common protocol is a 403 listing what the server speaks
        return status_response(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                       f"{offered}, server accepts {[pf.PROTOCOL_V1]}")
    try:
        sandbox = agent.find_sandbox(ns, name)
    except PodNotHere as exc:
        return status_response(exc.code, exc.reason, exc.message)
    conn = await upgrade.accept(request, pf.SPDY_UPGRADE, {pf.STREAM_PROTOCOL_HEADER: pf.PROTOCOL_V1})
    forwarder = _Forwarder(sandbox)
    spdy_conn = spdyconn.Connection(conn.reader, conn.write)
    try:
        await spdy_conn.serve(forwarder.accept, idle_timeout=pf.IDLE_TIMEOUT_SECONDS)
    finally:
        await forwarder.stop()
        conn.close()
    return web.Response()  # never sent: the connection is closed


class _Forwarder:
    """Pairs a connection's streams and runs one forward per complete pair."""

    def __init__(self, sandbox: SandboxInfo) -> None:
        self.sandbox = sandbox
        self.pairs: pf.Pairs[spdyconn.Stream] = pf.Pairs()
        self.tasks: set[asyncio.Task[None]] = set()

    async def accept(self, stream: spdyconn.Stream) -> str | None:
        problem = pf.stream_problem(stream.headers)
        if problem is not None:
            return problem
        rid = pf.request_id(stream.headers, stream.id)
        created = rid not in self.pairs.pending
        pair, problem = self.pairs.add(rid, stream.headers[pf.STREAM_TYPE], stream)
        if problem is not None:
            self._spawn(_print_error(pair, f"error processing stream for request {rid}: {problem}"))
        elif pair.complete:
            self._spawn(self._forward(pair))
        elif created:
            self._spawn(self._expire(rid))
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _expire(self, rid: str) -> None:
        await asyncio.sleep(pf.STREAM_CREATION_TIMEOUT_SECONDS)
        pair = self.pairs.drop(rid)
        if pair is not None:
            await _print_error(pair, f"(conn=?, request={rid}) timed out waiting for streams")

    async def _forward(self, pair: pf.Pair[spdyconn.Stream]) -> None:
        data, errors = pair.data, pair.error
        assert data is not None and errors is not None
        port = int(data.headers[pf.PORT])
        try:
            problem = await forward(self.sandbox.netns_path, port, data)
            if problem is not None:
                msg = pf.forward_error(port, self.sandbox.id, "", problem)
                log.info("%s", msg)
                await errors.write(msg.encode())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await data.close()
                await errors.close()
            data.conn.forget(data)
            errors.conn.forget(errors)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _print_error(pair: pf.Pair[spdyconn.Stream], message: str) -> None:
    if pair.error is not None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await pair.error.write(message.encode())


async def _connect(netns_path: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    """localhost:port inside the sandbox: IPv4 first, then IPv6 (as containerd); else the reason."""
    errors = []
    for family, host, label in ((socket.AF_INET, "127.0.0.1", "IPv4"), (socket.AF_INET6, "::1", "IPv6")):
        try:
            return await netns.open_connection(netns_path, host, port, CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            what = "connect: connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc) or "timeout"
            proto = "tcp4" if family == socket.AF_INET else "tcp6"
            shown = host if family == socket.AF_INET else f"[{host}]"
            errors.append(f"{label}: dial {proto} {shown}:{port}: {what}")
    return (f'failed to execute portforward in network namespace "{netns_path}": failed to connect to '
            f'localhost:{port} inside namespace "{netns_path}", ' + " ".join(errors))


async def forward(netns_path: str, port: int, stream: spdyconn.Stream) -> str | None:
    """Copy between `stream` and localhost:port in the namespace until the pod side ends; why
    not, if it could not connect."""
    connected = await _connect(netns_path, port)
    if isinstance(connected, str):
        return connected
    reader, writer = connected

    async def client_to_pod() -> None:
        while True:
            data = await stream.read()
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def pod_to_client() -> None:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            await stream.write(data)
            if stream.closed:
                return

    up = asyncio.create_task(client_to_pod())
    try:
        await pod_to_client()
    except (ConnectionError, OSError) as exc:
        log.debug("port %d: %s", port, exc)
    finally:
        up.cancel()
        await asyncio.gather(up, return_exceptions=True)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return None

