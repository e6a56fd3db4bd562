"""The agent's port-forward protocol driven frame by frame: a SPDY client written with
`kubecore.api.spdy` against the agent's connection (`spdyconn`) and forwarder, over a socket
pair, forwarding to a TCP server on loopback (the namespace of this test: no root needed)."""
from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from kubecore.api import spdy
from services.nodeagent import portforward, spdyconn


class Client:
    """The kubectl side: frames out, frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames_out, self.frames_in = spdy.FrameWriter(), spdy.FrameReader()
        self.pending: list[spdy.Frame] = []

    def send(self, frame: bytes) -> None:
        self.writer.write(frame)

    async def next(self, timeout: float = 5) -> spdy.Frame:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert data, "the server closed the connection"
            self.pending += self.frames_in.feed(data)
        return self.pending.pop(0)

    async def collect(self, stream_id: int, timeout: float = 5) -> bytes:
        """DATA of one stream until its FIN (other frames are kept aside)."""
        got, aside = b"", []
        while True:
            frame = await self.next(timeout)
            if frame.type == spdy.DATA and frame.stream_id == stream_id:
                got += frame.data
                if frame.fin:
                    self.pending[:0] = aside
                    return got
            else:
                aside.append(frame)


@pytest.fixture
async def echo_port():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def client():
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=theirs)
    agent_reader, agent_writer = await asyncio.open_connection(sock=ours)

    async def write(data: bytes) -> None:
        agent_writer.write(data)
        await agent_writer.drain()

    forwarder = portforward._Forwarder(SimpleNamespace(id="abc123", netns_path=None))  # type: ignore[arg-type]
    conn = spdyconn.Connection(agent_reader, write)
    serving = asyncio.create_task(conn.serve(forwarder.accept, idle_timeout=30))
    yield Client(reader, writer)
    writer.close()
    await asyncio.wait_for(serving, 5)
    await forwarder.stop()
    agent_writer.close()


def _pair(c: Client, first: int, port: int, rid: str) -> None:
    c.send(c.frames_out.syn_stream(first, {"streamtype": "error", "port": str(port), "requestid": rid}))
    c.send(c.frames_out.syn_stream(first + 2, {"streamtype": "data", "port": str(port), "requestid": rid}))


async def test_a_pair_forwards_both_ways_and_ends_with_fins(client, echo_port):
    _pair(client, 1, echo_port, "0")
    replies = [await client.next(), await client.next()]
    assert [(f.type, f.stream_id) for f in replies] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3)]
    client.send(client.frames_out.data(3, b"hello "))
    client.send(client.frames_out.data(3, b"world", fin=True))  # the client is done writing
    assert await client.collect(3) == b"HELLO WORLD"  # ... and the pod side's end is the data stream's
    assert await client.collect(1) == b""  # the error stream closes without a word


async def test_concurrent_pairs_by_request_id(client, echo_port):
    _pair(client, 1, echo_port, "0")
    _pair(client, 5, echo_port, "1")
    for sid, text in ((3, b"a" * 100_000), (7, b"b")):
        client.send(client.frames_out.data(sid, text, fin=True))
    assert await client.collect(7) == b"B"
    assert await client.collect(3) == b"A" * 100_000


async def test_a_closed_port_is_a_line_on_the_error_stream(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    _pair(client, 1, closed, "0")
    text = (await client.collect(1)).decode()
    assert text.startswith(f"error forwarding port {closed} to pod abc123, uid : failed to execute portforward in "
                           "network namespace")
    assert f"IPv4: dial tcp4 127.0.0.1:{closed}: connect: connection refused" in text, text


@pytest.mark.parametrize("headers,ident", [
    ({"streamtype": "data"}, 1),
    ({"streamtype": "data", "port": "0"}, 1),
    ({"streamtype": "stdin", "port": "80"}, 1),
], ids=["no-port", "port-zero", "bad-type"])
async def test_bad_streams_are_reset(client, headers, ident):
    client.send(client.frames_out.syn_stream(ident, headers))
    frame = await client.next()
    assert (frame.type, frame.stream_id, frame.status) == (spdy.RST_STREAM, ident, spdy.REFUSED_STREAM)


async def test_pings_are_answered_and_even_stream_ids_refused(client):
    client.send(client.frames_out.ping(7))
    frame = await client.next()
    assert (frame.type, frame.ping_id) == (spdy.PING, 7)
    client.send(client.frames_out.syn_stream(2, {"streamtype": "data", "port": "1"}))
    frame = await client.next()
    assert (frame.type, frame.status) == (spdy.RST_STREAM, spdy.PROTOCOL_ERROR)


async def test_garbage_ends_the_connection_with_goaway(client):
    client.send(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")  # SPDY/2
    frame = await client.next()
    assert (frame.type, frame.status) == (spdy.GOAWAY, spdy.PROTOCOL_ERROR)
