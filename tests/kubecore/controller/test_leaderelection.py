"""Leader election over a Lease with client-go's rules: first against an in-memory lock with a
hand-moved clock (the timing rules), then two electors against a real API server."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable
from kubecore.controller.leaderelection import ElectionConfig, LeaderElector, LeaseLock, Record, micro_time


class MemoryLock:
    """One Lease in memory, with a version that makes a stale update a conflict."""

    def __init__(self, shared: dict[str, object]) -> None:
        self.shared = shared
        self.seen_version = -1

    async def get(self) -> tuple[Record, bytes]:
        if "record" not in self.shared:
            raise ApiError(404, "NotFound", "no lease")
        self.seen_version = int(self.shared["version"])  # type: ignore[call-overload]
        record = self.shared["record"]
        assert isinstance(record, Record)
        return record, json.dumps(record.spec(), sort_keys=True).encode()

    async def create(self, record: Record) -> None:
        if "record" in self.shared:
            raise ApiError(409, "AlreadyExists", "exists")
        self.shared.update(record=record, version=1)
        self.seen_version = 1

    async def update(self, record: Record) -> None:
        if self.shared.get("version") != self.seen_version:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.shared.update(record=record, version=self.seen_version + 1)
        self.seen_version += 1


def elector(identity: str, shared: dict[str, object], clock: list[float]) -> LeaderElector:
    config = ElectionConfig("kube-system", "demo", identity, lease_duration=15, renew_deadline=10, retry_period=2)
    return LeaderElector(config, MemoryLock(shared), clock=lambda: clock[0], wall=lambda: 1_800_000_000 + clock[0])


async def test_the_first_takes_the_lease_and_the_second_waits_out_its_duration():
    shared: dict[str, object] = {}
    clock = [0.0]
    a, b = elector("a", shared, clock), elector("b", shared, clock)
    assert await a.try_acquire_or_renew() and a.is_leader()
    assert not await b.try_acquire_or_renew() and b.leader == "a"

    # a renews: the record changes, so b's clock for it starts again
    clock[0] = 10.0
    assert await a.try_acquire_or_renew()
    clock[0] = 20.0
    assert not await b.try_acquire_or_renew(), "b saw the change at 20 s: the lease is valid until 35 s"
    clock[0] = 34.9
    assert not await b.try_acquire_or_renew()

    # a stopped renewing at 10 s; by b's clock the record is unchanged for 15 s at 35 s
    clock[0] = 35.1
    assert await b.try_acquire_or_renew() and b.is_leader()
    record = shared["record"]
    assert isinstance(record, Record)
    assert (record.holder, record.transitions, record.lease_duration_seconds) == ("b", 1, 15)
    assert record.acquire_time == micro_time(1_800_000_035.1)

    # a comes back: its optimistic write conflicts, the slow path shows b's valid lease
    assert not await a.try_acquire_or_renew() and not a.is_leader() and a.leader == "b"


async def test_a_waiting_copy_tries_again_right_when_the_observed_lease_runs_out():
    shared: dict[str, object] = {}
    clock = [0.0]
    a, b = elector("a", shared, clock), elector("b", shared, clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # observed at 0 s: valid until 15 s
    clock[0] = 5.0
    assert 2.0 <= b.next_attempt_in() <= 2.0 * (1 + 1.2), "far from expiry: client-go's jittered retry period"
    clock[0] = 14.0
    assert b.next_attempt_in() == pytest.approx(1.01), "just after the lease runs out, not at the next tick"
    clock[0] += b.next_attempt_in()
    assert await b.try_acquire_or_renew() and b.is_leader()


async def test_a_renewing_holder_keeps_its_acquire_time_and_transitions():
    shared: dict[str, object] = {}
    clock = [0.0]
    a = elector("a", shared, clock)
    await a.try_acquire_or_renew()
    first = shared["record"]
    clock[0] = 5.0
    await a.try_acquire_or_renew()
    second = shared["record"]
    assert isinstance(first, Record) and isinstance(second, Record)
    assert second.acquire_time == first.acquire_time and second.transitions == first.transitions
    assert second.renew_time == micro_time(1_800_000_005.0) != first.renew_time


async def test_release_hands_over_at_once():
    shared: dict[str, object] = {}
    clock = [0.0]
    a, b = elector("a", shared, clock), elector("b", shared, clock)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    record = shared["record"]
    assert isinstance(record, Record) and record.holder == "" and record.lease_duration_seconds == 1
    assert await b.try_acquire_or_renew(), "an empty holder is free to take, whatever the time"


@pytest.mark.parametrize(("lease", "renew", "retry"), [(15, 15, 2), (15, 10, 10), (0, 0, 0)],
                         ids=["renew-not-below-lease", "retry-not-below-renew", "zero"])
def test_config_refuses_timings_that_let_two_lead(lease, renew, retry):
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        ElectionConfig("ns", "n", "me", lease_duration=lease, renew_deadline=renew, retry_period=retry)


@pytest.mark.etcd
async def test_two_copies_against_the_api_server_one_leads_and_the_other_takes_over(apiserver):
    config = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}
    leading: list[str] = []
    async with ApiClient(apiserver.config) as client:
        def candidate(identity: str, *, release: bool) -> LeaderElector:
            return LeaderElector(ElectionConfig("kube-system", "demo-controller", identity,
                                                release_on_cancel=release, **config),
                                 LeaseLock(client, "kube-system", "demo-controller"))

        async def work(identity: str) -> None:
            leading.append(identity)
            await asyncio.Event().wait()

        first, second = candidate("first_1", release=True), candidate("second_2", release=False)
        first_task = asyncio.create_task(first.run(lambda: work("first_1")))
        while not leading:
            await asyncio.sleep(0.05)
        second_task = asyncio.create_task(second.run(lambda: work("second_2")))
        await asyncio.sleep(1.0)
        assert leading == ["first_1"], "only one leads"
        lease = await client.get(R.LEASES, "demo-controller", "kube-system")
        assert lease["spec"]["holderIdentity"] == "first_1" and lease["spec"]["leaseDurationSeconds"] == 2

        # a clean stop releases the lease: the other copy leads within about one retry period
        stopped = time.monotonic()
        first_task.cancel()
        await asyncio.gather(first_task, return_exceptions=True)
        while len(leading) < 2:
            await asyncio.sleep(0.02)
        handover = time.monotonic() - stopped
        assert leading == ["first_1", "second_2"] and handover < 1.0, handover
        lease = await client.get(R.LEASES, "demo-controller", "kube-system")
        assert lease["spec"]["holderIdentity"] == "second_2" and lease["spec"]["leaseTransitions"] == 1

        # the holder dies without releasing: a new copy waits out the lease duration
        second_task.cancel()
        await asyncio.gather(second_task, return_exceptions=True)
        third = candidate("third_3", release=True)
        started = time.monotonic()
        third_task = asyncio.create_task(third.run(lambda: work("third_3")))
        while len(leading) < 3:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - started
        assert 1.8 <= waited < 3.5, waited
        third_task.cancel()
        await asyncio.gather(third_task, return_exceptions=True)


@pytest.mark.etcd
async def test_controllers_work_only_while_leading_and_a_copy_that_loses_the_lease_stops(apiserver):
    """Two copies of a controller (run_controller with an elector each): the standby syncs its
    caches but reconciles nothing until the leader stops; a leader whose Lease is taken from it
    stops its workers and raises LeadershipLost."""
    from kubecore.controller.run import LeadershipLost, WorkerPool, queue_handlers, run_controller
    from kubecore.informer.informer import Informer
    from kubecore.informer.workqueue import WorkQueue

    timings = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}
    from prometheus_client import CollectorRegistry

    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    registries = {"a": CollectorRegistry(), "b": CollectorRegistry()}

    def leads(identity: str) -> float | None:  # client-go's gauge
        return registries[identity].get_sample_value("leader_election_master_status", {"name": "demo"})

    async with ApiClient(apiserver.config) as client:
        def copy(identity: str) -> tuple[asyncio.Event, asyncio.Task[None]]:
            informer = Informer(client, R.SERVICES)
            queue = WorkQueue(f"services-{identity}")
            informer.add_handlers(**queue_handlers(queue))

            async def reconcile(key: str) -> None:
                seen[identity].add(key)

            elector = LeaderElector(ElectionConfig("kube-system", "demo", identity, **timings),
                                    LeaseLock(client, "kube-system", "demo"))
            stop = asyncio.Event()
            task = asyncio.create_task(run_controller(
                name=f"demo-{identity}", informers=[informer], pools=[WorkerPool(queue, reconcile)],
                registry=registries[identity], stop=stop, handle_signals=False, elector=elector))
            return stop, task

        async def until(what: str, predicate, timeout: float = 5.0) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, what
                await asyncio.sleep(0.05)

        stop_a, task_a = copy("a")
        await client.create(R.SERVICES, {"metadata": {"name": "one"}, "spec": {"ports": [{"port": 80}]}}, "default")
        await until("a reconciles", lambda: "default/one" in seen["a"])
        stop_b, task_b = copy("b")
        await asyncio.sleep(1.0)
        assert seen["b"] == set(), "the standby reconciles nothing"
        assert (leads("a"), leads("b")) == (1.0, 0.0)

        stop_a.set()
        await task_a
        await until("b leads after a's clean stop", lambda: "default/one" in seen["b"], timeout=2.0)
        assert leads("b") == 1.0

        # someone else takes the Lease from b: b's renewals fail, it stops within its renew deadline
        for _ in range(20):  # b renews meanwhile: a renewal between our read and write is a conflict
            lease = await client.get(R.LEASES, "demo", "kube-system")
            lease["spec"] = {**lease["spec"], "holderIdentity": "intruder", "renewTime": micro_time(time.time())}
            try:
                await client.replace(R.LEASES, lease)
                break
            except ApiError as exc:
                if exc.code != 409:
                    raise
        else:
            raise AssertionError("the Lease could not be taken from b")
        started = time.monotonic()
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(task_b, timeout=5.0)
        assert time.monotonic() - started < timings["lease_duration"] + 0.5
        stop_b.set()


class WatchedMemoryLock(MemoryLock):
    """MemoryLock whose changes a waiting copy can follow as they happen, as over a watch."""

    def __init__(self, shared: dict[str, object]) -> None:
        super().__init__(shared)
        self.queue: asyncio.Queue = asyncio.Queue()
        shared.setdefault("followers", []).append(self.queue)  # type: ignore[union-attr]

    async def update(self, record: Record) -> None:
        await super().update(record)
        for queue in self.shared["followers"]:  # type: ignore[union-attr]
            queue.put_nowait((record, json.dumps(record.spec(), sort_keys=True).encode()))

    async def changes(self):
        while True:
            yield await self.queue.get()


async def test_a_copy_following_the_lease_takes_over_right_when_it_runs_out():
    """With renewals observed as they happen, the takeover comes lease_duration (2 s) after the
    last renewal, not up to a jittered retry period (here up to 1.1 s) later."""
    async def trial() -> float:
        shared: dict[str, object] = {}
        config = {"lease_duration": 2, "renew_deadline": 1.5, "retry_period": 0.5, "release_on_cancel": False}
        a = LeaderElector(ElectionConfig("kube-system", "demo", "a", **config), WatchedMemoryLock(shared))
        b = LeaderElector(ElectionConfig("kube-system", "demo", "b", **config), WatchedMemoryLock(shared))
        leading_a, leading_b = asyncio.Event(), asyncio.Event()

        async def lead(flag: asyncio.Event) -> None:
            flag.set()
            await asyncio.sleep(60)
        task_a = asyncio.create_task(a.run(lambda: lead(leading_a)))
        await leading_a.wait()
        task_b = asyncio.create_task(b.run(lambda: lead(leading_b)))
        await asyncio.sleep(1.3)
        last_renewal = a.observed_time
        task_a.cancel()  # gone without releasing, as after kill -9
        await asyncio.wait_for(leading_b.wait(), 5)
        took = time.monotonic() - last_renewal
        task_b.cancel()
        await asyncio.gather(task_a, task_b, return_exceptions=True)
        return took

    takeovers = await asyncio.gather(*(trial() for _ in range(8)))
    assert all(2 <= t < 2 + 0.2 for t in takeovers), takeovers


class UnreachableLock(MemoryLock):
    """A MemoryLock whose API server stops answering while `down` is set."""

    down = False

    async def get(self):
        if self.down:
            raise ApiUnavailable("GET lease: Cannot connect to host")
        return await super().get()

    async def update(self, record):
        if self.down:
            raise ApiUnavailable("PUT lease: Cannot connect to host")
        await super().update(record)


async def test_a_leader_rides_out_an_api_outage_shorter_than_its_renew_deadline():
    shared: dict[str, object] = {}
    lock = UnreachableLock(shared)
    config = ElectionConfig("kube-system", "demo", "a", lease_duration=3, renew_deadline=2, retry_period=0.2)
    a = LeaderElector(config, lock)
    leading = asyncio.Event()

    async def lead() -> None:
        leading.set()
        await asyncio.sleep(60)
    task = asyncio.create_task(a.run(lead))
    await leading.wait()
    lock.down = True
    await asyncio.sleep(1.0)  # no API server for half the renew deadline
    assert not task.done(), "the leader gave up at the first unanswered renewal"
    lock.down = False
    await asyncio.sleep(0.5)
    assert not task.done() and a.is_leader()
    lock.down = True  # now longer than the renew deadline: it stops
    await asyncio.wait_for(task, 5)
