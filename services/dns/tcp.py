"""Who may hold a DNS-over-TCP connection, and for how long.

A TCP connection costs the server a socket and a task for as long as the client keeps it, so
the clients must not be able to keep them all: a few hundred idle connections would otherwise
lock every other client out of TCP, which is where truncated answers send them. So

- each connection must bring its first query within ``READ_TIMEOUT`` and each later one within
  ``IDLE_TIMEOUT`` of the last answer, whole (a client trickling a byte at a time gains
  nothing), and must take each answer within ``WRITE_TIMEOUT`` -- CoreDNS's server defaults;
- one client address holds at most ``MAX_PER_CLIENT`` connections, all clients ``MAX_TOTAL``;
- at either cap a new connection does not wait for a slot: the longest-waiting connection
  (of that client at its cap, of anyone at the total) is closed to make room, as RFC 7766
  (6.2.3) lets a server do under pressure. Only when every connection is busy answering is
  the new one refused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

READ_TIMEOUT = 3.0
IDLE_TIMEOUT = 10.0
WRITE_TIMEOUT = 5.0
MAX_TOTAL = 256
MAX_PER_CLIENT = 16


@dataclass(eq=False, slots=True)
class Connection:
    client: str
    task: asyncio.Task[None]
    waiting_since: float | None = None  # monotonic; None while a query is being answered

    def waiting(self) -> None:
        self.waiting_since = time.monotonic()

    def answering(self) -> None:
        self.waiting_since = None


class TcpConnections:
    """The open connections, with the caps above; `admit` before serving, `release` after."""

    def __init__(self, *, max_total: int = MAX_TOTAL, max_per_client: int = MAX_PER_CLIENT) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._open: dict[asyncio.Task[None], Connection] = {}
        self._per_client: dict[str, int] = {}
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def of_client(self, client: str) -> int:
        return self._per_client.get(client, 0)

    def admit(self, client: str, task: asyncio.Task[None]) -> Connection | None:
        """A slot for `task`, making room by closing a waiting connection if a cap is reached;
        None if there is no room to make."""
        if self.of_client(client) >= self.max_per_client and not self._evict(client):
            self.refused += 1
            return None
        if len(self._open) >= self.max_total and not self._evict(None):
            self.refused += 1
            return None
        conn = Connection(client, task)
        self._open[task] = conn
        self._per_client[client] = self.of_client(client) + 1
        return conn

    def release(self, conn: Connection) -> None:
        if self._open.pop(conn.task, None) is None:
            return
        left = self._per_client[conn.client] - 1
        if left:
            self._per_client[conn.client] = left
        else:
            del self._per_client[conn.client]

    def _evict(self, client: str | None) -> bool:
        """Close the connection (of `client`, or of anyone) that has waited longest for a query."""
        candidates = [c for c in self._open.values()
                      if c.waiting_since is not None and (client is None or c.client == client)]
        if not candidates:
            return False
        oldest = min(candidates, key=lambda c: c.waiting_since or 0.0)
        self.release(oldest)  # at once: the slot is the new connection's now
        oldest.task.cancel()
        self.evicted += 1
        return True
