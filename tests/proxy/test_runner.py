"""The bounded-frequency runner, with real asyncio time and short intervals."""
from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from services.proxy.runner import BoundedFrequencyRunner, SyncTrigger


class Recorder:
    """A sync function that records when and why it ran, and can be made to fail."""

    def __init__(self, *, duration: float = 0.0, fail_times: int = 0) -> None:
        self.calls: list[tuple[float, SyncTrigger]] = []
        self.duration = duration
        self.fail_times = fail_times
        self.called = asyncio.Event()

    async def __call__(self, trigger: SyncTrigger) -> None:
        self.calls.append((time.monotonic(), trigger))
        self.called.set()
        if self.duration:
            await asyncio.sleep(self.duration)
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("iptables-restore: line 7 failed")


async def _until(predicate, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


async def test_burst_of_requests_becomes_one_sync(registry: CollectorRegistry) -> None:
    rec = Recorder()
    runner = BoundedFrequencyRunner(rec, registry=registry, min_interval=0.2, sync_period=60)
    runner.start()
    try:
        await _until(lambda: len(rec.calls) == 1)  # the initial sync
        for _ in range(500):
            runner.request()
        await asyncio.sleep(0.05)
        assert len(rec.calls) == 1, "min_interval must hold back the burst"
        await _until(lambda: len(rec.calls) == 2)
        await asyncio.sleep(0.35)
        assert len(rec.calls) == 2, "500 requests merge into exactly one more sync"
        assert rec.calls[1][0] - rec.calls[0][0] >= 0.2 - 0.01
        assert rec.calls[1][1] is SyncTrigger.CHANGED
    finally:
        await runner.stop()
    assert registry.get_sample_value("proxy_syncs_total", {"trigger": "changed"}) == 2


async def test_request_during_sync_causes_one_more_sync(registry: CollectorRegistry) -> None:
    rec = Recorder(duration=0.1)
    runner = BoundedFrequencyRunner(rec, registry=registry, min_interval=0.05, sync_period=60)
    runner.start()
    try:
        await _until(lambda: len(rec.calls) == 1)
        runner.request()  # arrives while the first sync is still running
        runner.request()
        await _until(lambda: len(rec.calls) == 2)
        await asyncio.sleep(0.3)
        assert len(rec.calls) == 2
    finally:
        await runner.stop()


async def test_periodic_resync_without_changes(registry: CollectorRegistry) -> None:
    rec = Recorder()
    runner = BoundedFrequencyRunner(rec, registry=registry, min_interval=0.01, sync_period=0.15)
    runner.start()
    try:
        await _until(lambda: len(rec.calls) == 3, timeout=1.0)
    finally:
        await runner.stop()
    assert [trigger for _, trigger in rec.calls] == [SyncTrigger.CHANGED, SyncTrigger.PERIODIC, SyncTrigger.PERIODIC]
    gaps = [b[0] - a[0] for a, b in zip(rec.calls, rec.calls[1:], strict=False)]
    assert all(0.14 <= gap < 0.4 for gap in gaps), gaps


async def test_failures_are_retried_with_backoff_and_counted(registry: CollectorRegistry) -> None:
    rec = Recorder(fail_times=3)
    runner = BoundedFrequencyRunner(rec, registry=registry, min_interval=0.01, sync_period=60,
                                    retry_initial=0.05, retry_max=0.12)
    runner.start()
    try:
        await _until(lambda: len(rec.calls) == 4)
        await asyncio.sleep(0.2)
    finally:
        await runner.stop()
    assert len(rec.calls) == 4, "after the first success nothing is pending"
    assert [t for _, t in rec.calls] == [SyncTrigger.CHANGED, SyncTrigger.RETRY, SyncTrigger.RETRY, SyncTrigger.RETRY]
    gaps = [b[0] - a[0] for a, b in zip(rec.calls, rec.calls[1:], strict=False)]
    # 0.05, then doubled to 0.10, then capped at 0.12.
    assert gaps[0] == pytest.approx(0.05, abs=0.03)
    assert gaps[1] == pytest.approx(0.10, abs=0.03)
    assert gaps[2] == pytest.approx(0.12, abs=0.03)
    assert runner.failures == 3
    assert registry.get_sample_value("proxy_sync_failures_total") == 3


async def test_changes_do_not_bypass_retry_backoff(registry: CollectorRegistry) -> None:
    rec = Recorder(fail_times=1)
    runner = BoundedFrequencyRunner(rec, registry=registry, min_interval=0.01, sync_period=60,
                                    retry_initial=0.2)
    runner.start()
    try:
        await _until(lambda: len(rec.calls) == 1)
        for _ in range(10):
            runner.request()
            await asyncio.sleep(0.01)
        assert len(rec.calls) == 1
        await _until(lambda: len(rec.calls) == 2)
    finally:
        await runner.stop()
    assert rec.calls[1][0] - rec.calls[0][0] >= 0.19
    assert rec.calls[1][1] is SyncTrigger.RETRY


async def test_stop_cancels_an_inflight_sync(registry: CollectorRegistry) -> None:
    rec = Recorder(duration=5)
    runner = BoundedFrequencyRunner(rec, registry=registry)
    runner.start()
    await rec.called.wait()
    started = time.monotonic()
    await runner.stop()
    assert time.monotonic() - started < 0.5
