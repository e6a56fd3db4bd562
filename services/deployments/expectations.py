"""Creations and deletions a controller has asked for and not yet seen, per owner key.

client-go's (UID-tracking) ControllerExpectations: after asking for 10 pods the
ReplicaSet must not count again (and ask for 10 more) before the informer has shown
them. The informer's add handler lowers the creations, its delete handler (or a pod
turning terminating) removes the pod from the deletions. An owner syncs only when
both are settled, or when the record is older than `ttl` (a watch event lost for good
must not block the owner for ever).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0


@dataclass
class _Expected:
    creations: int = 0
    deletions: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_owner: dict[str, _Expected] = {}

    def expect_creations(self, owner: str, count: int) -> None:
        self._by_owner[owner] = _Expected(creations=count, since=self.clock())

    def expect_deletions(self, owner: str, pod_keys: list[str]) -> None:
        self._by_owner[owner] = _Expected(deletions=set(pod_keys), since=self.clock())

    def creation_observed(self, owner: str) -> None:
        exp = self._by_owner.get(owner)
        if exp is not None and exp.creations > 0:
            exp.creations -= 1

    def deletion_observed(self, owner: str, pod_key: str) -> None:
        exp = self._by_owner.get(owner)
        if exp is not None:
            exp.deletions.discard(pod_key)

    def satisfied(self, owner: str) -> bool:
        exp = self._by_owner.get(owner)
        if exp is None:
            return True
        if exp.creations <= 0 and not exp.deletions:
            return True
        return self.clock() - exp.since > self.ttl

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)

    def pending(self, owner: str) -> tuple[int, int]:
        exp = self._by_owner.get(owner)
        return (0, 0) if exp is None else (exp.creations, len(exp.deletions))
