"""The agent's streaming exec: GET /exec/{namespace}/{pod}/{container}?command=..&stdin=..
upgraded to a WebSocket of the channel protocol (`kubecore.api.remotecommand`), as the kubelet's.

Once upgraded, every outcome is a Status on channel 3 followed by a normal close: the exit
code of the command, or why it could not run (pod or container not here, container not
running). The command is a process of its own session; it is killed (with what it forked)
when the other side goes away before it ends, or when its container stops running.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import WSMsgType, web

from kubecore.api import remotecommand as rc
from services.nodeagent.agent import Agent, PodNotHere
from services.nodeagent.execproc import STDOUT, ExecProcess
from services.nodeagent.httpstatus import status_response
from services.nodeagent.runtime import CONTAINER_RUNNING, CommandNotFoundError, NotFoundError, RuntimeServiceError

log = logging.getLogger("nodeagent.exec")

# After the command exits, what it wrote is read to the end and sent, however slowly the client
# takes it; output that stops coming for this long (a pipe held open by a process the command
# left in the background) is given up.
OUTPUT_DRAIN_SECONDS = 2.0
CONTAINER_CHECK_SECONDS = 1.0


class Output(Protocol):
    """Where the command's output and the final Status go (a WebSocket, or SPDY streams)."""

    sent: int
    sending: int

    async def send(self, channel: int, data: bytes = b"") -> None: ...

    async def status(self, status: dict) -> None: ...


Messages = AsyncIterator[tuple[int, bytes]]


class Channel:
    """The WebSocket, written by several tasks: one whole message at a time."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._lock = asyncio.Lock()
        self.sent = 0  # messages sent
        self.sending = 0  # messages on their way: waiting for their turn or for the client

    async def send(self, channel: int, data: bytes = b"") -> None:
        self.sending += 1
        try:
            async with self._lock:
                if not self.ws.closed:
                    await self.ws.send_bytes(rc.frame(channel, data))
                    self.sent += 1
        finally:
            self.sending -= 1

    async def status(self, status: dict) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_bytes(rc.status_frame(status))


async def serve(request: web.Request, agent: Agent) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, heartbeat=rc.HEARTBEAT_SECONDS,
                               max_msg_size=rc.MAX_MESSAGE_BYTES)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol is None:
        return status_response(400, "BadRequest", "exec streams need a WebSocket with one of the "
                               "subprotocols " + ", ".join(rc.PROTOCOLS))
    await ws.prepare(request)
    out = Channel(ws)
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    opts = rc.ExecOptions.from_query(request.query)
    try:
        status = await run(agent, websocket_messages(ws), out, ns, pod, container, opts)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never a hanging client: whatever went wrong is its Status
        log.exception("exec in %s/%s/%s failed", ns, pod, container)
        status = rc.failure(500, "InternalError", f"error executing command in container: {exc}")
    with contextlib.suppress(ConnectionError, RuntimeError):
        await out.status(status)
        await ws.close()
    return ws


def websocket_messages(ws: web.WebSocketResponse) -> Messages:
    """The client's (channel, data) messages; the iteration ends when the client is gone."""
    async def messages() -> AsyncIterator[tuple[int, bytes]]:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                yield msg.data[0], msg.data[1:]
    return messages()


async def run(agent: Agent, messages: Messages, out: Output, ns: str, pod: str, container: str,
              opts: rc.ExecOptions) -> dict:
    """Run the command with the client's messages and output; the Status to end with. Shared
    by the WebSocket and the SPDY (`spdystreams`) transports."""
    problem = opts.problem()
    if problem:
        return rc.failure(400, "BadRequest", problem)
    try:
        info = agent.find_container(ns, pod, container)
    except PodNotHere as exc:
        return rc.failure(exc.code, exc.reason, exc.message)
    runtime = agent.runtime
    if runtime.container_status(info.id).state != CONTAINER_RUNNING:
        return rc.failure(400, "BadRequest", f"cannot exec in a container that is not running: "
                          f"container {container} of pod {ns}/{pod}")
    # As the kubelet does: an empty message on the first output channel says the stream is up.
    await out.send(rc.STDOUT if opts.stdout else rc.STDERR if opts.stderr and not opts.tty else rc.ERROR)
    try:
        proc = await runtime.exec_stream(info.id, list(opts.command), stdin=opts.stdin, stdout=opts.stdout,
                                         stderr=opts.stderr and not opts.tty, tty=opts.tty)
    except CommandNotFoundError as exc:
        channel = rc.STDERR if opts.stderr and not opts.tty else rc.STDOUT if opts.stdout else None
        if channel is not None:
            end = "\r\n" if opts.tty else "\n"
            await out.send(channel, f"{exc}{end}".encode())
        return rc.exit_code(exc.exit_code)
    except RuntimeServiceError as exc:
        return rc.failure(500, "InternalError", f"error executing command in container: {exc}")
    log.info("exec in %s/%s/%s pid=%d: %s", ns, pod, container, proc.pid, list(opts.command))
    try:
        return await _stream(runtime, info.id, messages, out, proc, opts)
    finally:
        proc.kill()
        proc.close()


async def _stream(runtime, container_id: str, messages: Messages, out: Output, proc: ExecProcess,
                  opts: rc.ExecOptions) -> dict:
    # One task sends all output, in the order it was read: tar's "Cannot stat" on stderr goes
    # out before the empty archive it then writes to stdout.
    pumps = [asyncio.create_task(_pump(proc, out))] if opts.stdout or (opts.stderr and not opts.tty) else []
    receiver = asyncio.create_task(_receive(messages, proc, opts))
    exited = asyncio.create_task(proc.wait())
    watcher = asyncio.create_task(_container_stops(runtime, container_id))
    try:
        done, _ = await asyncio.wait({exited, receiver, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            # The client left, or the container stopped: the command goes with it.
            proc.kill()
            await exited
        code = exited.result()
        # The rest of the output may take the client long to take: only a stretch with none
        # sent and none on its way ends the wait for it.
        pending: set[asyncio.Task] = set(pumps)
        while pending and not receiver.done():
            sent = out.sent
            _, pending = await asyncio.wait(pending, timeout=OUTPUT_DRAIN_SECONDS)
            if out.sent == sent and not out.sending:
                break
        return rc.exit_code(code)
    finally:
        for task in (*pumps, receiver, exited, watcher):
            task.cancel()
        await asyncio.gather(*pumps, receiver, exited, watcher, return_exceptions=True)


async def _pump(proc: ExecProcess, out: Output) -> None:
    while (piece := await proc.read_output()) is not None:
        fd, data = piece
        await out.send(rc.STDOUT if fd == STDOUT else rc.STDERR, data)


async def _receive(messages: Messages, proc: ExecProcess, opts: rc.ExecOptions) -> None:
    """stdin, resize and close messages from the client; returns when the client is gone."""
    async for channel, data in messages:
        if channel == rc.STDIN and opts.stdin:
            await proc.write_stdin(data)
        elif channel == rc.RESIZE and opts.tty:
            try:
                size = json.loads(data)
                proc.resize(int(size.get("Width") or 0), int(size.get("Height") or 0))
            except (ValueError, TypeError, AttributeError, OSError):
                log.debug("ignoring a bad resize message %r", data[:100])
        elif channel == rc.CLOSE and data[:1] == bytes((rc.STDIN,)) and opts.stdin:
            await proc.close_stdin()


async def _container_stops(runtime, container_id: str) -> None:
    while True:
        await asyncio.sleep(CONTAINER_CHECK_SECONDS)
        try:
            if runtime.container_status(container_id).state != CONTAINER_RUNNING:
                return
        except NotFoundError:
            return
