"""exec and attach over SPDY/3.1, the remotecommand protocol `v4.channel.k8s.io` that kubectl
up to 1.29 speaks (the kubelet's remotecommand server).

The client upgrades with `X-Stream-Protocol-Version: v4.channel.k8s.io` (among older ones) and
opens one SPDY stream per channel, named by its `streamType` header: `error` first, then
`stdin`, `stdout`, `stderr` as the options ask, and `resize` with a terminal (JSON sizes one
after another). Once all have come the command runs (or the client joins the container),
exactly as over a WebSocket (`execstream.run`, `attachstream.run`): output goes to the
stdout/stderr streams, stdin's end (the client half-closes it) is stdin's end, and the Status
(`Success`, or `NonZeroExitCode` with the code) is written on the error stream before every
stream is closed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kubecore.api import portforward as pf
from kubecore.api import remotecommand as rc
from kubecore.controller import upgrade
from services.nodeagent import attachstream, execstream, spdyconn
from services.nodeagent.agent import Agent
from services.nodeagent.httpstatus import status_response

log = logging.getLogger("nodeagent.spdystreams")
V4 = "v4.channel.k8s.io"
STREAM_TYPE = "streamtype"
CHANNELS = {"error": rc.ERROR, "stdin": rc.STDIN, "stdout": rc.STDOUT, "stderr": rc.STDERR, "resize": rc.RESIZE}
STREAM_CREATION_TIMEOUT = 30.0


def expected_streams(opts: rc.ExecOptions) -> set[str]:
    """The streams a client opens for these options (kubelet's count of them)."""
    kinds = {"error"}
    for name in ("stdin", "stdout"):
        if getattr(opts, name):
            kinds.add(name)
    if opts.stderr and not opts.tty:
        kinds.add("stderr")
    if opts.tty:
        kinds.add("resize")
    return kinds


class SpdyOutput:
    """execstream's Output over the SPDY streams."""

    def __init__(self, streams: dict[str, spdyconn.Stream]) -> None:
        self.by_channel = {CHANNELS[k]: s for k, s in streams.items()}
        self.sent = 0
        self.sending = 0

    async def send(self, channel: int, data: bytes = b"") -> None:
        stream = self.by_channel.get(channel)
        if stream is None or not data:  # no "stream is up" marker: SYN_REPLY said that
            return
        self.sending += 1
        try:
            await stream.write(data)
            self.sent += 1
        finally:
            self.sending -= 1

    async def status(self, status: dict) -> None:
        stream = self.by_channel.get(rc.ERROR)
        if stream is not None:
            await stream.write(json.dumps(status, separators=(",", ":")).encode())


async def _messages(streams: dict[str, spdyconn.Stream],
                    serving: asyncio.Task[None]) -> AsyncIterator[tuple[int, bytes]]:
    """stdin (and its end) and resizes as execstream's (channel, data) messages, until the
    connection ends."""
    queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def stdin(stream: spdyconn.Stream) -> None:
        while data := await stream.read():
            queue.put_nowait((rc.STDIN, data))
        queue.put_nowait((rc.CLOSE, bytes((rc.STDIN,))))

    async def resize(stream: spdyconn.Stream) -> None:
        buf, decoder = "", json.JSONDecoder()
        while data := await stream.read():
            buf += data.decode(errors="replace")
            while buf.strip():
                try:
                    size, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                queue.put_nowait((rc.RESIZE, json.dumps(size).encode()))

    tasks = [asyncio.create_task(stdin(streams["stdin"]))] if "stdin" in streams else []
    if "resize" in streams:
        tasks.append(asyncio.create_task(resize(streams["resize"])))
    serving.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (item := await queue.get()) is not None:
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(request: web.Request, agent: Agent, *, attach: bool) -> web.StreamResponse:
    offered = [p.strip() for v in request.headers.getall(pf.STREAM_PROTOCOL_HEADER, []) for p in v.split(",")
               if p.strip()]
    if V4 not in offered:
        return status_response(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                       f"{offered}, server accepts {[V4]}")
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    opts = rc.ExecOptions.from_query(request.query)
    expected = expected_streams(opts)
    conn = await upgrade.accept(request, pf.SPDY_UPGRADE, {pf.STREAM_PROTOCOL_HEADER: V4})
    streams: dict[str, spdyconn.Stream] = {}
    complete = asyncio.Event()

    async def accept(stream: spdyconn.Stream) -> str | None:
        kind = stream.headers.get(STREAM_TYPE, "")
        if kind not in expected or kind in streams:
            return f"unexpected stream of type {kind!r}"
        streams[kind] = stream
        if expected <= streams.keys():
            complete.set()
        return None

    spdy_conn = spdyconn.Connection(conn.reader, conn.write)
    serving = asyncio.create_task(spdy_conn.serve(accept, idle_timeout=pf.IDLE_TIMEOUT_SECONDS))
    try:
        waiter = asyncio.create_task(complete.wait())
        await asyncio.wait({waiter, serving}, timeout=STREAM_CREATION_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not complete.is_set():
            log.info("%s/%s/%s: timed out waiting for client to create streams", ns, pod, container)
            return web.Response()
        await _run(agent, streams, serving, ns, pod, container, opts, attach=attach)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        conn.close()
    return web.Response()  # never sent: the connection was taken over


async def _run(agent: Agent, streams: dict[str, spdyconn.Stream], serving: asyncio.Task[None], ns: str, pod: str,
               container: str, opts: rc.ExecOptions, *, attach: bool) -> None:
    out = SpdyOutput(streams)
    try:
        runner = attachstream.run if attach else execstream.run
        status = await runner(agent, _messages(streams, serving), out, ns, pod, container, opts)
    except Exception as exc:  # never a hanging client: whatever went wrong is its Status
        log.exception("%s in %s/%s/%s failed", "attach" if attach else "exec", ns, pod, container)
        status = rc.failure(500, "InternalError", f"error executing command in container: {exc}")
    with contextlib.suppress(ConnectionError, RuntimeError):
        await out.status(status)
        for stream in streams.values():
            await stream.close()
