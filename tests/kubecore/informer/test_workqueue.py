"""Work queue semantics: pure, in-memory, fast."""
from __future__ import annotations

import asyncio
import logging

import pytest

from kubecore.informer.workqueue import ExponentialBackoff, ShutDown, WorkQueue, process_one, run_workers


async def until(cond, timeout: float = 5.0) -> None:
    async def poll():
        while not cond():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


async def test_repeated_adds_before_processing_collapse_into_one():
    q = WorkQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_readded_while_processing_comes_back_only_after_done():
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0 and q.is_processing("a")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.02)
    assert not getter.done()  # nobody else gets "a" while it is processed
    q.done(key)
    assert await asyncio.wait_for(getter, 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue():
    q = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_no_key_is_processed_by_two_workers_at_once():
    q = WorkQueue()
    running: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []

    async def reconcile(key: str) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        await asyncio.sleep(0.001)
        q.add(key if len(processed) < 200 else "zzz")  # re-add while being processed
        processed.append(key)
        running.discard(key)

    for i in range(5):
        q.add(f"k{i}")
    workers = asyncio.create_task(run_workers(q, reconcile, 8))
    await until(lambda: len(processed) >= 300)
    q.shutdown()
    await asyncio.wait_for(workers, 5)
    assert overlaps == []
    assert {"k0", "k1", "k2", "k3", "k4"} <= set(processed)


@pytest.mark.parametrize("base, cap, expected", [
    (0.005, 300.0, [0.005, 0.01, 0.02, 0.04, 0.08]),
    (1.0, 5.0, [1.0, 2.0, 4.0, 5.0, 5.0]),
], ids=["default-like", "capped"])
def test_exponential_backoff_grows_per_key_and_is_capped(base, cap, expected):
    rl = ExponentialBackoff(base, cap)
    assert [rl.when("a") for _ in expected] == expected
    assert rl.when("b") == base  # per key
    assert rl.num_requeues("a") == len(expected)
    rl.forget("a")
    assert rl.num_requeues("a") == 0 and rl.when("a") == base


async def test_add_rate_limited_delays_and_counts_requeues():
    q = WorkQueue(rate_limiter=ExponentialBackoff(base=0.05, cap=10))
    q.add_rate_limited("a")
    assert len(q) == 0 and q.num_requeues("a") == 1
    assert await asyncio.wait_for(q.get(), 2) == "a"
    q.done("a")
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_add_after_waits_and_the_earliest_delay_wins():
    q = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 30)
    q.add_after("a", 0.05)
    q.add_after("a", 20)
    assert len(q) == 0 and q.pending_delayed() == 1
    assert await asyncio.wait_for(q.get(), 5) == "a"
    assert loop.time() - start >= 0.04
    assert q.pending_delayed() == 0


async def test_add_after_of_a_queued_key_does_not_duplicate_it():
    q = WorkQueue()
    q.add("a")
    q.add_after("a", 0.01)
    await asyncio.sleep(0.05)
    assert len(q) == 1


async def test_failures_retry_with_backoff_and_success_forgets():
    q = WorkQueue(rate_limiter=ExponentialBackoff(base=0.001, cap=0.01))
    attempts: list[int] = []

    async def reconcile(key: str) -> None:
        attempts.append(q.num_requeues(key))
        if len(attempts) < 4:
            raise RuntimeError("not yet")

    q.add("a")
    workers = asyncio.create_task(run_workers(q, reconcile, 2))
    await until(lambda: len(attempts) == 4 and not q.is_processing("a"))
    assert attempts == [0, 1, 2, 3]
    assert q.num_requeues("a") == 0
    q.shutdown()
    await asyncio.wait_for(workers, 5)


async def test_max_retries_drops_the_key(caplog):
    q = WorkQueue(rate_limiter=ExponentialBackoff(base=0.001, cap=0.001))
    calls = []

    async def reconcile(key):
        calls.append(key)
        raise ValueError("broken")

    q.add("ns/x")
    with caplog.at_level(logging.WARNING, logger="kubecore.informer.workqueue"):
        for _ in range(3):
            assert await asyncio.wait_for(process_one(q, reconcile, max_retries=2), 2)
    assert calls == ["ns/x"] * 3
    assert q.num_requeues("ns/x") == 0 and len(q) == 0 and q.pending_delayed() == 0
    assert any(getattr(r, "key", None) == "ns/x" and "giving up" in r.getMessage()
               for r in caplog.records)


async def test_shutdown_drains_then_get_raises():
    q = WorkQueue()
    q.add("a")
    q.add_after("later", 10)
    q.shutdown()
    q.add("b")  # ignored
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()
    assert q.pending_delayed() == 0


async def test_shutdown_wakes_blocked_getters():
    q = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0.01)
    q.shutdown()
    for g in getters:
        with pytest.raises(ShutDown):
            await asyncio.wait_for(g, 1)


async def test_a_cancelled_getter_passes_its_wakeup_on():
    q = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.add("a")  # wakes `first`...
    first.cancel()  # ...which goes away before it runs
    assert await asyncio.wait_for(second, 1) == "a"


async def test_workers_let_the_rest_of_the_process_run_while_keys_keep_coming():
    # A reconcile that awaits nothing and asks for its key again (add, or add_after with no
    # delay left) hands the worker a key at once, every time. The worker must still let
    # other tasks run between keys: otherwise informers, health checks and signal handlers
    # stop until the key stops coming back, and a controller stuck that way is frozen.
    q = WorkQueue()
    rounds = 0
    ticks_seen: list[int] = []
    ticks = 0

    async def reconcile(key: str) -> None:
        nonlocal rounds
        rounds += 1
        ticks_seen.append(ticks)
        if rounds < 2000:
            q.add_after(key, 0)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    q.add("a")
    workers = asyncio.create_task(run_workers(q, reconcile))
    await until(lambda: rounds >= 2000)
    q.shutdown()
    await asyncio.wait_for(workers, 1)
    other.cancel()
    # the other task ran all along, not only once the key stopped coming back
    assert ticks_seen[1000] > ticks_seen[0]
