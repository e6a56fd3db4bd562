"""Bounded-frequency sync runner: at most one sync per interval, at least one per period.

For the node-level programs that rewrite a packet filter from everything they watch (the
proxy, the NetworkPolicy agent). Event handlers call `request()` and return; they never
touch the kernel.  A burst of hundreds of EndpointSlice updates during a rollout thus becomes
one sync, and no two syncs ever run at the same time.  This mirrors kube-proxy's
BoundedFrequencyRunner:

- `min_interval`: minimum time between the starts of two syncs;
- `sync_period`: a full resync runs this long after the last successful
  sync even without changes, repairing rules someone else removed;
- a failing sync is retried after an exponential backoff (capped), the
  failure is counted, and whatever rules are in the kernel stay in place.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)


class SyncTrigger(enum.Enum):
    """Why a sync runs; the proxier makes periodic and retry syncs full ones."""

    CHANGED = "changed"
    PERIODIC = "periodic"
    RETRY = "retry"


SyncFunc = Callable[[SyncTrigger], Awaitable[None]]


class BoundedFrequencyRunner:
    """Runs `sync` in one background task, coalescing requests."""

    def __init__(
        self,
        sync: SyncFunc,
        *,
        registry: CollectorRegistry,
        min_interval: float = 1.0,
        sync_period: float = 30.0,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        metrics_prefix: str = "proxy",
    ) -> None:
        self._sync = sync
        self.min_interval = min_interval
        self.sync_period = sync_period
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._changed = False
        self._retry_at: float | None = None
        self._backoff = retry_initial
        self._last_start: float | None = None
        self._last_success: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.syncs = 0
        self.failures = 0
        self.failures_total = Counter(
            f"{metrics_prefix}_sync_failures", "Rule syncs that raised", registry=registry
        )
        self.syncs_total = Counter(
            f"{metrics_prefix}_syncs", "Rule syncs started", ["trigger"], registry=registry
        )
        self.sync_seconds = Histogram(
            f"{metrics_prefix}_sync_duration_seconds",
            "Time spent in one rule sync",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )

    def request(self) -> None:
        """Note that state changed; cheap and safe to call from any handler."""
        self._changed = True
        self._wakeup.set()

    def start(self) -> asyncio.Task[None]:
        """Start the loop; the first sync runs immediately."""
        if self._task is None:
            self._changed = True
            self._task = asyncio.create_task(self.run(), name="proxy-sync-runner")
        return self._task

    async def stop(self) -> None:
        """Cancel the loop, waiting for an in-flight sync to be cancelled."""
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    def _next_due(self, now: float) -> tuple[float, SyncTrigger]:
        """When the next sync should start if no new request arrives, and why."""
        if self._changed:
            due, trigger = now, SyncTrigger.CHANGED
            if self._retry_at is not None:
                # A change does not skip the backoff of a failing sync: retrying
                # a broken iptables in a tight loop would only make things worse.
                due, trigger = max(due, self._retry_at), SyncTrigger.RETRY
        elif self._retry_at is not None:
            due, trigger = self._retry_at, SyncTrigger.RETRY
        else:
            base = self._last_success if self._last_success is not None else now
            due, trigger = base + self.sync_period, SyncTrigger.PERIODIC
        if self._last_start is not None:
            due = max(due, self._last_start + self.min_interval)
        return due, trigger

    async def run(self) -> None:
        """The loop; runs until cancelled."""
        while True:
            due, trigger = self._next_due(self._clock())
            delay = due - self._clock()
            if delay > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
                except TimeoutError:
                    pass
                else:
                    continue  # a request arrived: recompute when it may run
                due, trigger = self._next_due(self._clock())
                if due > self._clock():
                    continue
            await self._run_once(trigger)

    async def _run_once(self, trigger: SyncTrigger) -> None:
        # Clear before running: a request that arrives during the sync must
        # cause another sync, since this one may have read the old state.
        self._changed = False
        self._last_start = self._clock()
        self.syncs += 1
        self.syncs_total.labels(trigger=trigger.value).inc()
        started = time.perf_counter()
        try:
            await self._sync(trigger)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            self.failures_total.inc()
            self._retry_at = self._clock() + self._backoff
            log.exception("proxy sync failed (trigger=%s); retrying in %.2fs", trigger.value, self._backoff)
            self._backoff = min(self._backoff * 2, self.retry_max)
        else:
            self._retry_at = None
            self._backoff = self.retry_initial
            self._last_success = self._clock()
        finally:
            self.sync_seconds.observe(time.perf_counter() - started)
