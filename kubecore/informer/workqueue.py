"""A rate-limited work queue of keys, the way client-go's workqueue behaves.

Handlers add keys (`namespace/name`); workers take them. The queue holds keys, not
events, which gives controllers their level-triggered shape:

- a key added many times before a worker takes it is handed out once (`dirty`);
- a key is never held by two workers at once: re-added while being processed, it is
  handed out again only after `done(key)` (`processing`);
- a failed key comes back after a per-key exponential delay (`add_rate_limited`),
  reset by `forget(key)` on success.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("kubecore.informer.workqueue")
Key = str  # an object key, "namespace/name" (client-go's cache keys)


class ShutDown(Exception):
    """`get()` on a queue that is shut down and has nothing left to hand out."""


class RateLimiter(Protocol):
    def when(self, key: Key) -> float: ...
    def forget(self, key: Key) -> None: ...
    def num_requeues(self, key: Key) -> int: ...


class ExponentialBackoff:
    """base * 2**failures, capped: 5 ms, 10 ms, 20 ms ... up to `cap` per key."""

    def __init__(self, base: float = 0.005, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Key, int] = {}

    def when(self, key: Key) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        factor: int = 2 ** min(n, 62)
        return min(self.base * factor, self.cap)

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Key) -> int:
        return self._failures.get(key, 0)


class WorkQueue:
    def __init__(self, name: str = "", rate_limiter: RateLimiter | None = None) -> None:
        self.name = name
        self.rate_limiter: RateLimiter = rate_limiter or ExponentialBackoff()
        self._queue: deque[Key] = deque()
        self._dirty: set[Key] = set()  # wanted: queued, or to be re-queued after done
        self._processing: set[Key] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._timer_due: dict[Key, float] = {}
        self._shutting_down = False

    # -- adding ------------------------------------------------------------------
    def add(self, key: Key) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # handed out again by done()
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: Key, delay: float) -> None:
        """Add `key` once `delay` seconds have passed. Of several pending delays for one
        key the earliest wins (as in client-go's delaying queue)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if key in self._timers:
            if self._timer_due[key] <= due:
                return
            self._timers[key].cancel()
        self._timer_due[key] = due
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._timer_due.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Key) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Key) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Key) -> int:
        return self.rate_limiter.num_requeues(key)

    # -- taking --------------------------------------------------------------------
    async def get(self) -> Key:
        """The next key; it is now being processed until `done(key)`. Raises `ShutDown`
        once the queue is shut down and drained."""
        # Yield to the loop even when a key is ready: a worker whose reconcile awaits nothing
        # and whose key keeps coming back (add, add_after(key, 0)) would otherwise never let
        # another task run, and the whole process would freeze.
        await asyncio.sleep(0)
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif self._queue:
                    self._wake_one()  # pass on the wake-up this waiter will not use
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Stop accepting keys; workers drain what is queued, then `get()` raises ShutDown."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._timer_due.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- looking -------------------------------------------------------------------
    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def is_processing(self, key: Key) -> bool:
        return key in self._processing

    def pending_delayed(self) -> int:
        return len(self._timers)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


Reconcile = Callable[[Key], Awaitable[None]]


async def process_one(queue: WorkQueue, reconcile: Reconcile, *, max_retries: int | None = None,
                      logger: logging.Logger = log) -> bool:
    """Take one key and reconcile it: forget it on success, requeue it with backoff on
    failure. False once the queue is shut down."""
    try:
        key = await queue.get()
    except ShutDown:
        return False
    extra = {"key": key, "queue": queue.name}
    try:
        await reconcile(key)
    except asyncio.CancelledError:
        queue.done(key)
        raise
    except Exception as exc:
        retries = queue.num_requeues(key)
        if max_retries is not None and retries >= max_retries:
            logger.error("%s: giving up after %d retries: %s", key, retries, exc, extra=extra,
                         exc_info=True)
            queue.forget(key)
        else:
            logger.warning("%s: reconcile failed (retry %d): %s", key, retries + 1, exc,
                           extra=extra, exc_info=logger.isEnabledFor(logging.DEBUG))
            queue.add_rate_limited(key)
    else:
        queue.forget(key)
    queue.done(key)
    return True


async def run_workers(queue: WorkQueue, reconcile: Reconcile, n: int = 1, *,
                      max_retries: int | None = None, logger: logging.Logger = log) -> None:
    """Run `n` workers over `queue` until it is shut down and drained."""
    async def worker() -> None:
        while await process_one(queue, reconcile, max_retries=max_retries, logger=logger):
            pass

    await asyncio.gather(*(worker() for _ in range(max(1, n))))
