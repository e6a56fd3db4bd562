"""The agent's attach: GET /attach/{namespace}/{pod}/{container}?stdin=..&stdout=..&stderr=..&tty=..
upgraded to a WebSocket of the channel protocol (`kubecore.api.remotecommand`), as the kubelet's.

The client joins the container's own stdio (`containerio`): from then on what the container
writes comes on channel 1 (and 2: stderr, without a terminal), what the client sends on
channel 0 goes to the container's stdin, resizes to its terminal. Whether there is a terminal
is the container's (its spec's `tty`), not the request's, as with the kubelet. The exchange ends
with a Success Status when the container's output ends (it exited), or when the client leaves;
with `stdinOnce` the container's stdin is closed then, and when the client's stdin ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import web

from kubecore.api import remotecommand as rc
from services.nodeagent.agent import Agent, PodNotHere
from services.nodeagent.containerio import STDERR, Chunk, ContainerIO
from services.nodeagent.execstream import Channel, Messages, Output, websocket_messages
from services.nodeagent.httpstatus import status_response
from services.nodeagent.runtime import CONTAINER_RUNNING

log = logging.getLogger("nodeagent.attach")


async def serve(request: web.Request, agent: Agent) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, heartbeat=rc.HEARTBEAT_SECONDS,
                               max_msg_size=rc.MAX_MESSAGE_BYTES)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol is None:
        return status_response(400, "BadRequest", "attach streams need a WebSocket with one of the "
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
        log.exception("attach to %s/%s/%s failed", ns, pod, container)
        status = rc.failure(500, "InternalError", f"error attaching to container: {exc}")
    with contextlib.suppress(ConnectionError, RuntimeError):
        await out.status(status)
        await ws.close()
    return ws


async def run(agent: Agent, messages: Messages, out: Output, ns: str, pod: str, container: str,
              opts: rc.ExecOptions) -> dict:
    """Attach the client's messages and output to the container; the Status to end with."""
    if not (opts.stdin or opts.stdout or opts.stderr):
        return rc.failure(400, "BadRequest", "you must specify at least one of stdin, stdout, stderr")
    try:
        info = agent.find_container(ns, pod, container)
    except PodNotHere as exc:
        return rc.failure(exc.code, exc.reason, exc.message)
    io = agent.runtime.container_io(info.id) if agent.runtime.container_status(info.id).state == \
        CONTAINER_RUNNING else None
    if io is None:
        return rc.failure(400, "BadRequest", f"cannot attach to a container that is not running: "
                          f"container {container} of pod {ns}/{pod}")
    tty = io.tty
    await out.send(rc.STDOUT if opts.stdout else rc.STDERR if opts.stderr and not tty else rc.ERROR)
    queue = io.attach()
    log.info("attached to %s/%s/%s (tty=%s stdin=%s)", ns, pod, container, tty, opts.stdin)
    sender = asyncio.create_task(_send(queue, out, opts, tty))
    receiver = asyncio.create_task(_receive(messages, io, opts))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        io.detach(queue)
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    return rc.success()


async def _send(queue: asyncio.Queue[Chunk | None], out: Output, opts: rc.ExecOptions, tty: bool) -> None:
    while (chunk := await queue.get()) is not None:
        stream, data = chunk
        if stream == STDERR and not tty:
            if opts.stderr:
                await out.send(rc.STDERR, data)
        elif opts.stdout:
            await out.send(rc.STDOUT, data)


async def _receive(messages: Messages, io: ContainerIO, opts: rc.ExecOptions) -> None:
    """stdin, resize and close messages from the client; returns when the client is gone."""
    async for channel, data in messages:
        if channel == rc.STDIN and opts.stdin:
            await io.write_stdin(data)
        elif channel == rc.RESIZE:
            try:
                size = json.loads(data)
                io.resize(int(size.get("Width") or 0), int(size.get("Height") or 0))
            except (ValueError, TypeError, AttributeError, OSError):
                log.debug("ignoring a bad resize message %r", data[:100])
        elif channel == rc.CLOSE and data[:1] == bytes((rc.STDIN,)) and opts.stdin and io.stdin_once:
            io.close_stdin()
