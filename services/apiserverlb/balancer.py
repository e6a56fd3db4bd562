"""A TCP load balancer in front of the API servers, as kind's HA clusters put haproxy in front
of theirs: the user's kubeconfig names it, so kubectl, which knows one server only, keeps
working when an API server dies.

- Each connection goes to the next healthy backend in turn (round robin); a backend that
  refuses the connection is skipped for the next one at once. With no backend healthy, every
  backend is tried in turn rather than none (a check can be wrong; a refused connect is not).
- TLS passes through untouched: the client talks to the API server itself, which sees the
  client's certificate.
- A backend is healthy while its `/readyz` answers 200 (haproxy's `option httpchk`): a server
  cut off from etcd answers 503 there and gets no new connections. `fall` failed checks in a
  row mark it down, `rise` good ones up again; checks run every `interval` seconds.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)
CHUNK = 64 * 1024


@dataclass
class Backend:
    host: str
    port: int
    healthy: bool = True  # until the first checks say otherwise
    failed_checks: int = 0
    good_checks: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


Check = Callable[[Backend], Awaitable[bool]]


class Balancer:
    def __init__(self, backends: list[Backend], check: Check, *, registry: CollectorRegistry,
                 interval: float = 1.0, fall: int = 2, rise: int = 1, connect_timeout: float = 2.0) -> None:
        if not backends:
            raise ValueError("a load balancer needs at least one backend")
        self.backends, self.check = backends, check
        self.interval, self.fall, self.rise, self.connect_timeout = interval, fall, rise, connect_timeout
        self._next = 0
        self.connections = Counter("apiserverlb_connections", "Connections passed to each backend",
                                   ["backend"], registry=registry)
        self.refused = Counter("apiserverlb_backend_connect_failures", "Connects to a backend that failed",
                               ["backend"], registry=registry)
        self.up = Gauge("apiserverlb_backend_up", "1 while the backend's checks pass", ["backend"],
                        registry=registry)
        for b in backends:
            self.up.labels(b.address).set(1)

    def order(self) -> list[Backend]:
        """The backends to try for a new connection: the healthy ones from the next in turn,
        then, as a last resort, the others."""
        n = len(self.backends)
        start, self._next = self._next, (self._next + 1) % n
        turn = [self.backends[(start + i) % n] for i in range(n)]
        return [b for b in turn if b.healthy] + [b for b in turn if not b.healthy]

    @property
    def any_healthy(self) -> bool:
        return any(b.healthy for b in self.backends)

    async def check_once(self) -> None:
        results = await asyncio.gather(*(self.check(b) for b in self.backends), return_exceptions=True)
        for b, ok in zip(self.backends, results, strict=True):
            self._record(b, ok is True)

    def _record(self, b: Backend, ok: bool) -> None:
        if ok:
            b.failed_checks, b.good_checks = 0, b.good_checks + 1
            if not b.healthy and b.good_checks >= self.rise:
                b.healthy = True
                log.info("backend %s is up", b.address)
        else:
            b.good_checks, b.failed_checks = 0, b.failed_checks + 1
            if b.healthy and b.failed_checks >= self.fall:
                b.healthy = False
                log.warning("backend %s is down", b.address)
        self.up.labels(b.address).set(1 if b.healthy else 0)

    async def check_loop(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: to the first backend that takes it, bytes passed both ways
        until either side closes."""
        try:
            for b in self.order():
                try:
                    up_reader, up_writer = await asyncio.wait_for(
                        asyncio.open_connection(b.host, b.port), self.connect_timeout)
                except (OSError, TimeoutError):
                    self.refused.labels(b.address).inc()
                    continue
                self.connections.labels(b.address).inc()
                await _splice(reader, writer, up_reader, up_writer)
                return
            log.warning("no backend took a connection")
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # a half-close passes through: the other way may still talk
    except (OSError, ConnectionError):
        dst.close()


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        up_writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await up_writer.wait_closed()
