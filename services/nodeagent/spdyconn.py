"""The server side of a SPDY/3.1 connection (what spdystream is to the kubelet), over asyncio.

The client opens streams (SYN_STREAM); `serve` asks `accept` about each one and answers
SYN_REPLY (taken) or RST_STREAM (refused, as kube's `stream.Reset()`), echoes PINGs (kubectl
pings every 5 s), and ends at GOAWAY or when the connection closes. A `Stream` is read until
the client half-closes it (FIN) and written until the server does. There is no flow control,
as in spdystream: a stream whose reader lags holds the whole connection's reading (the
sender then waits on TCP) once it has `STREAM_BUFFER_BYTES` unread.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from kubecore.api import spdy

log = logging.getLogger("nodeagent.spdy")

STREAM_BUFFER_BYTES = 1024 * 1024
WRITE_CHUNK = 32 * 1024


class Stream:
    def __init__(self, conn: Connection, stream_id: int, headers: Mapping[str, str]) -> None:
        self.conn, self.id, self.headers = conn, stream_id, headers
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()  # b"" marks the client's end
        self._buffered = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.closed = False  # our side sent FIN or RST
        self.remote_closed = False
        self.replied = asyncio.Event()  # SYN_REPLY sent: data may follow

    def _deliver(self, data: bytes) -> None:
        if self.remote_closed:
            return
        if data:
            self._buffered += len(data)
            if self._buffered >= STREAM_BUFFER_BYTES:
                self._drained.clear()
        self._chunks.put_nowait(data)

    def _remote_end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._chunks.put_nowait(b"")

    async def read(self) -> bytes:
        """The next bytes from the client; b"" once it closed its side (or reset the stream)."""
        data = await self._chunks.get()
        if not data:
            self._chunks.put_nowait(b"")  # every later read sees the end too
            return b""
        self._buffered -= len(data)
        if self._buffered < STREAM_BUFFER_BYTES:
            self._drained.set()
        return data

    async def write(self, data: bytes) -> None:
        await self.replied.wait()
        for start in range(0, len(data), WRITE_CHUNK):
            if self.closed:
                return
            await self.conn.send(self.conn.writer.data(self.id, data[start:start + WRITE_CHUNK]))

    async def close(self) -> None:
        """Our side is done writing (FIN)."""
        await self.replied.wait()
        if not self.closed:
            self.closed = True
            await self.conn.send(self.conn.writer.data(self.id, fin=True))

    async def reset(self, status: int = spdy.CANCEL) -> None:
        if not self.closed:
            self.closed = True
            await self.conn.send(self.conn.writer.rst_stream(self.id, status))
        self._remote_end()


Accept = Callable[[Stream], Awaitable[str | None]]


class Connection:
    """One upgraded connection: `reader` its incoming bytes, `write` sends bytes out."""

    def __init__(self, reader: asyncio.StreamReader, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._reader, self._write = reader, write
        self.writer = spdy.FrameWriter()
        self._frames = spdy.FrameReader()
        self._lock = asyncio.Lock()
        self.streams: dict[int, Stream] = {}
        self._last_id = 0
        self.closed = False

    async def send(self, frame: bytes) -> None:
        """One whole frame (the compression context and the byte stream stay in order)."""
        async with self._lock:
            if not self.closed:
                await self._write(frame)

    async def serve(self, accept: Accept, *, idle_timeout: float) -> None:
        """Read frames until the client goes away, is idle for `idle_timeout` or says GOAWAY."""
        try:
            while True:
                data = await asyncio.wait_for(self._reader.read(64 * 1024), idle_timeout)
                if not data:
                    return
                for frame in self._frames.feed(data):
                    if not await self._handle(frame, accept):
                        return
        except spdy.ProtocolError as exc:
            log.info("closing a SPDY connection: %s", exc)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(self.writer.goaway(self._last_id, spdy.PROTOCOL_ERROR))
        except TimeoutError:
            log.info("closing an idle SPDY connection")
        finally:
            self.closed = True
            for stream in self.streams.values():
                stream.closed = True
                stream.replied.set()
                stream._remote_end()

    async def _handle(self, frame: spdy.Frame, accept: Accept) -> bool:
        if frame.type == spdy.SYN_STREAM:
            await self._open(frame, accept)
        elif frame.type == spdy.DATA:
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream._deliver(frame.data)
                if frame.fin:
                    stream._remote_end()
                await stream._drained.wait()
        elif frame.type == spdy.RST_STREAM:
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.closed = True
                stream._remote_end()
        elif frame.type == spdy.PING:
            if frame.ping_id % 2 == 1:  # the client's (odd ids); ours would be even
                await self.send(self.writer.ping(frame.ping_id))
        elif frame.type == spdy.GOAWAY:
            return False
        return True

    async def _open(self, frame: spdy.Frame, accept: Accept) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self._last_id:
            await self.send(self.writer.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        self._last_id = sid
        stream = Stream(self, sid, frame.headers)
        if frame.fin:
            stream._remote_end()
        self.streams[sid] = stream
        problem = await accept(stream)
        if problem is not None:
            log.info("stream %d refused: %s", sid, problem)
            self.streams.pop(sid, None)
            await stream.reset(spdy.REFUSED_STREAM)
            return
        await self.send(self.writer.syn_reply(sid))
        stream.replied.set()

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)
