"""Expectations: the slice writes this controller made that its cache has not shown yet.

Planning from a cache that lags behind our own writes would write again (a second slice
for endpoints already placed, an update that conflicts). So every write is remembered
until the informer delivers it back; meanwhile the service is not planned. The echo that
settles the last expectation of a service is not worth a reconcile by itself: it is our
own write. Only if events for the service were skipped while it waited is it enqueued.

Expectations expire (`ttl`), so a write whose echo never comes (the slice deleted by
someone else before our watch saw it, a relist that merged both) cannot block a service.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DELETED = "deleted"


def _newer_or_same(seen: str, wanted: str) -> bool:
    """resourceVersions are etcd revisions here; compare them as numbers when they are."""
    try:
        return int(seen) >= int(wanted)
    except ValueError:
        return seen == wanted


@dataclass
class _Pending:
    expected: dict[str, str] = field(default_factory=dict)  # slice name -> rv or DELETED
    deadline: float = 0.0
    skipped: bool = False  # a reconcile was put off while waiting


class WriteTracker:
    def __init__(self, ttl: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, _Pending] = {}  # service key -> what we wait for

    def expect_write(self, service_key: str, slice_name: str, resource_version: str,
                     seen_rv: str | None) -> None:
        """We wrote `slice_name` at `resource_version`; `seen_rv` is what the cache holds
        now (the echo may have come in while the write's answer was on its way)."""
        if seen_rv is not None and _newer_or_same(seen_rv, resource_version):
            return
        self._expect(service_key, slice_name, resource_version)

    def expect_delete(self, service_key: str, slice_name: str, still_cached: bool) -> None:
        if still_cached:
            self._expect(service_key, slice_name, DELETED)

    def _expect(self, service_key: str, slice_name: str, what: str) -> None:
        pending = self._pending.setdefault(service_key, _Pending())
        pending.expected[slice_name] = what
        pending.deadline = self.clock() + self.ttl

    def observe(self, service_key: str, slice_name: str, resource_version: str | None) -> bool:
        """The cache now shows the slice at `resource_version` (None: deleted). True when
        this was our own write's echo and the service need not be reconciled for it."""
        pending = self._pending.get(service_key)
        if pending is None or slice_name not in pending.expected:
            return False
        wanted = pending.expected[slice_name]
        if resource_version is None:
            settled = True  # deleted: whatever we expected of it is moot
            echo = wanted == DELETED
        else:
            if wanted == DELETED or not _newer_or_same(resource_version, wanted):
                return False
            settled, echo = True, resource_version == wanted
        if settled:
            del pending.expected[slice_name]
            if not pending.expected:
                del self._pending[service_key]
                return echo and not pending.skipped
        return echo

    def expecting(self, service_key: str) -> bool:
        """True while writes for this key have not all come back (expired or not)."""
        return service_key in self._pending

    def waiting(self, service_key: str) -> bool:
        """True while the cache lags behind our writes for this service (and notes that a
        reconcile was put off, so the last echo brings it back)."""
        pending = self._pending.get(service_key)
        if pending is None:
            return False
        if self.clock() >= pending.deadline:
            del self._pending[service_key]
            return False
        pending.skipped = True
        return True

    def time_left(self, service_key: str) -> float:
        pending = self._pending.get(service_key)
        return 0.0 if pending is None else max(0.0, pending.deadline - self.clock())

    def forget(self, service_key: str) -> None:
        self._pending.pop(service_key, None)

    def __len__(self) -> int:
        return len(self._pending)
