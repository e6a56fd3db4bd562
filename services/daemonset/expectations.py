"""Creations and deletions a DaemonSet has asked for and not seen yet (client-go's
ControllerExpectations, by count as kube's DaemonSet controller keeps them): until the
informer has shown them, a sync only writes status, so a burst is not asked for twice. A
record older than `ttl` counts as settled: a lost watch event must not block a DaemonSet."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

EXPECTATIONS_TTL = 300.0


@dataclass
class _Expected:
    creations: int
    deletions: int
    since: float


class Expectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_key: dict[str, _Expected] = {}

    def expect(self, key: str, creations: int, deletions: int) -> None:
        self._by_key[key] = _Expected(creations, deletions, self.clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.creations -= count

    def deletion_observed(self, key: str, count: int = 1) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletions -= count

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None or (exp.creations <= 0 and exp.deletions <= 0):
            return True
        return self.clock() - exp.since > self.ttl

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
