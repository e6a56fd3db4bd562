"""Sockets: UDP and TCP on one port, feeding ``QueryHandler``.

UDP skips asyncio's datagram transport: a reader callback drains the socket in a loop (up to a
batch per wake-up), so a burst costs one epoll round trip instead of one per packet. TCP uses
asyncio streams under the timeouts and caps of ``tcp``, so slow or hostile clients can neither
stall the loop nor pile up nor lock others out.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Sequence

from . import tcp, wire
from .forward import Forwarder, Upstream
from .handler import Forward, QueryHandler, QueryStats
from .records import RecordReader

log = logging.getLogger(__name__)

UDP_BATCH = 256
MAX_FORWARDS_IN_FLIGHT = 1024
SOCKET_BUFFER = 4 * 1024 * 1024


class DnsServer:
    """The cluster DNS server. ``await start(host, port)`` (port 0 picks a free one)."""

    def __init__(
        self,
        reader: RecordReader,
        *,
        zone: str = "cluster.local",
        ttl: int = 5,
        upstreams: Sequence[Upstream] = (),
        forward_timeout: float = 2.0,
        cache_size: int = 50_000,
        reuse_port: bool = False,
        max_tcp_connections: int = tcp.MAX_TOTAL,
        max_tcp_per_client: int = tcp.MAX_PER_CLIENT,
    ) -> None:
        self.handler = QueryHandler(
            reader, zone=zone, ttl=ttl, forwarding=bool(upstreams), cache_size=cache_size
        )
        self.forwarder = Forwarder(upstreams, timeout=forward_timeout)
        self.reuse_port = reuse_port
        self.host = ""
        self.port = 0
        self._udp: socket.socket | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tcp = tcp.TcpConnections(max_total=max_tcp_connections, max_per_client=max_tcp_per_client)

    @property
    def stats(self) -> QueryStats:
        return self.handler.stats

    async def start(self, host: str = "127.0.0.1", port: int = 53) -> None:
        loop = asyncio.get_running_loop()
        udp, tcp = self._bind(host, port)
        self._udp = udp
        self.host, self.port = host, udp.getsockname()[1]
        loop.add_reader(udp.fileno(), self._on_udp_readable)
        self._tcp_server = await asyncio.start_server(self._serve_tcp, sock=tcp)
        log.info("dns listening on %s port %d (udp+tcp)", host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _bind(self, host: str, port: int) -> tuple[socket.socket, socket.socket]:
        """Bind UDP and TCP to the same port; with port 0, retry until both get one."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(50):
            tcp = socket.socket(family, socket.SOCK_STREAM)
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self.reuse_port:
                    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                tcp.bind((host, port))
                udp.bind((host, tcp.getsockname()[1]))
            except OSError as exc:
                tcp.close()
                udp.close()
                if port == 0 and exc.errno == errno.EADDRINUSE:
                    continue
                raise
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    udp.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    # -- UDP ---------------------------------------------------------------------------------

    def _on_udp_readable(self) -> None:
        sock = self._udp
        if sock is None:
            return
        recvfrom, sendto, answer = sock.recvfrom, sock.sendto, self.handler.answer
        for _ in range(UDP_BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error queued on the socket; the next read is fine
            response = answer(data, False)
            if response is None:
                continue
            if isinstance(response, Forward):
                self._start_forward(data, response, addr)
                continue
            try:
                sendto(response, addr)
            except OSError:
                self.handler.stats.dropped += 1  # full buffer or unreachable: UDP may drop

    def _start_forward(self, data: bytes, request: Forward, addr: tuple[str, int]) -> None:
        if len(self._tasks) >= MAX_FORWARDS_IN_FLIGHT:
            self.handler.stats.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._forward_udp(data, request, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward_udp(self, data: bytes, request: Forward, addr: tuple[str, int]) -> None:
        response = wire.truncate_reply(await self._forward(data, request, tcp=False), request.udp_size)
        if self._udp is not None:
            with contextlib.suppress(OSError):
                self._udp.sendto(response, addr)

    async def _forward(self, data: bytes, request: Forward, *, tcp: bool) -> bytes:
        stats = self.handler.stats
        stats.forwarded += 1
        qtype = struct.unpack_from("!H", request.question, len(request.question) - 4)[0]
        reply = await self.forwarder.forward(data, request.question, tcp=tcp)
        if reply is None:
            stats.forward_failures += 1
            stats.count(qtype, 2)
            return servfail_with_question(data, request.question)
        stats.count(qtype, reply[3] & 0xF)
        return reply

    # -- TCP ---------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        conn = self.tcp.admit(str(peer[0]) if peer else "", task) if task is not None else None
        if conn is None or task is None:
            writer.close()
            return
        self._tasks.add(task)
        try:
            timeout = tcp.READ_TIMEOUT
            while True:
                conn.waiting()
                data = await asyncio.wait_for(_read_message(reader), timeout)
                conn.answering()
                timeout = tcp.IDLE_TIMEOUT
                response = self.handler.answer(data, True)
                if isinstance(response, Forward):
                    response = await self._forward(data, response, tcp=True)
                if response is None:
                    continue
                writer.write(struct.pack("!H", len(response)) + response)
                await asyncio.wait_for(writer.drain(), tcp.WRITE_TIMEOUT)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, asyncio.CancelledError):
            pass  # the client left or was too slow, or the connection made room for another
        except Exception:
            log.exception("TCP connection failed")
        finally:
            self.tcp.release(conn)
            self._tasks.discard(task)
            writer.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One length-prefixed DNS message (RFC 1035 4.2.2)."""
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(length)


def servfail_with_question(data: bytes, question: bytes) -> bytes:
    ident, flags = struct.unpack_from("!HH", data)
    flags = (flags & (wire.FLAG_RD | wire.FLAG_CD)) | wire.FLAG_QR | wire.FLAG_RA | 2
    return struct.pack("!6H", ident, flags, 1, 0, 0, 0) + question
