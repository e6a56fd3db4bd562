"""Forwarding names outside the cluster zone to upstream resolvers over UDP.

Each attempt uses its own connected UDP socket (the kernel then drops datagrams from anyone but
that upstream) and a fresh query id; a reply counts only if id and question match. Upstreams
are tried in order within a per-upstream timeout. A truncated reply to a TCP client is fetched
again over TCP, so TCP clients do not loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import struct
from collections.abc import Sequence

log = logging.getLogger(__name__)

Upstream = tuple[str, int]


def parse_upstream(text: str) -> Upstream:
    """'127.0.0.1', '127.0.0.1:5353', '::1' or '[::1]:5353' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host, port = text, 53
    ipaddress.ip_address(host)  # upstreams are addresses: resolving them would need DNS
    if not 0 < port < 65536:
        raise ValueError(f"bad port in upstream {text!r}")
    return host, port


class Forwarder:
    def __init__(self, upstreams: Sequence[Upstream], *, timeout: float = 2.0) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout

    async def forward(self, query: bytes, question: bytes, *, tcp: bool = False) -> bytes | None:
        """The upstream's reply with the client's id restored, or None if none answered."""
        for host, port in self.upstreams:
            ident = secrets.randbits(16)
            outgoing = struct.pack("!H", ident) + query[2:]
            try:
                reply = await asyncio.wait_for(
                    self._udp(outgoing, question, host, port), self.timeout
                )
                if tcp and reply[2] & 0x02:
                    reply = await asyncio.wait_for(
                        self._tcp(outgoing, question, host, port), self.timeout
                    )
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("upstream %s:%d failed: %r", host, port, exc)
                continue
            return query[:2] + reply[2:]
        return None

    async def _udp(self, outgoing: bytes, question: bytes, host: str, port: int) -> bytes:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        loop = asyncio.get_running_loop()
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((host, port))
            await loop.sock_sendall(sock, outgoing)
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if _matches(reply, outgoing, question):
                    return reply

    async def _tcp(self, outgoing: bytes, question: bytes, host: str, port: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack("!H", len(outgoing)) + outgoing)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = await reader.readexactly(length)
        finally:
            writer.close()
        if not _matches(reply, outgoing, question):
            raise OSError("upstream TCP reply does not match the query")
        return reply


def _matches(reply: bytes, outgoing: bytes, question: bytes) -> bool:
    end = 12 + len(question)
    return (
        len(reply) >= end
        and reply[:2] == outgoing[:2]
        and reply[2] & 0x80 != 0
        and reply[12:end].lower() == question.lower()
    )
