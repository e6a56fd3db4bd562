"""Leader election over a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it.

Several copies of a controller run; one holds the Lease and works, the others wait to take over.
The rules are client-go's (tools/leaderelection/leaderelection.go), so a Lease written by this
elector reads as kube-controller-manager's do (`kubectl get lease -n kube-system`):

- a candidate tries every `retry_period` (jittered by up to 1.2x, client-go's JitterFactor) to
  create the Lease or, once the holder's record has not changed for `lease_duration` by the
  candidate's own clock, to take it over (`leaseTransitions` + 1, a new `acquireTime`);
- "changed" means the record's bytes differ from the last one seen: each candidate times the
  lease from when *it* observed the record, never from the timestamps in it, so clocks of
  different machines need not agree;
- the holder renews every `retry_period`, first optimistically with the Lease it last wrote
  (its resourceVersion makes a concurrent writer's change a conflict), else by reading it again;
- when renewals keep failing for `renew_deadline` (less than `lease_duration`), the holder stops
  leading: its work is cancelled before any other candidate can consider the Lease expired;
- on a clean stop the holder releases the Lease (empty holder, duration 1 s) so the next one
  takes over at once instead of after the lease duration.

`LeaseLock` is the only part that talks to the API server (get, create, replace one Lease).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiUnavailable, WatchEvent

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
Obj = dict[str, Any]


@dataclass(frozen=True)
class ElectionConfig:
    """client-go's LeaderElectionConfig (and kube-controller-manager's defaults)."""

    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs an identity")
        if not 0 < self.retry_period * JITTER_FACTOR < self.renew_deadline < self.lease_duration:
            raise ValueError("need lease_duration > renew_deadline > retry_period * 1.2 > 0")


@dataclass(frozen=True)
class Record:
    """client-go's LeaderElectionRecord, the part of a Lease's spec election uses."""

    holder: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    transitions: int

    def spec(self) -> Obj:
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time,
                "leaseTransitions": self.transitions}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Record:
        return cls(str(spec.get("holderIdentity") or ""), int(spec.get("leaseDurationSeconds") or 0),
                   str(spec.get("acquireTime") or ""), str(spec.get("renewTime") or ""),
                   int(spec.get("leaseTransitions") or 0))


def micro_time(when: float) -> str:
    """metav1.MicroTime's RFC 3339 form with microseconds, in UTC."""
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lock(Protocol):
    async def get(self) -> tuple[Record, bytes]:
        """The current record and its raw form; raises ApiError 404 when there is no Lease."""
        ...

    async def create(self, record: Record) -> None: ...

    async def update(self, record: Record) -> None:
        """Write `record` over the Lease last read or written (a conflict if it changed since)."""
        ...


class Client(Protocol):
    def watch(self, rt: R.ResourceType, namespace: str | None = None, *,
              field_selector: str | None = None) -> AsyncIterator[WatchEvent]: ...
    async def get(self, rt: R.ResourceType, name: str, namespace: str | None = None) -> Obj: ...
    async def create(self, rt: R.ResourceType, obj: Obj, namespace: str | None = None) -> Obj: ...
    async def replace(self, rt: R.ResourceType, obj: Obj) -> Obj: ...


class LeaseLock:
    """client-go's LeaseLock: one Lease object, remembered with its resourceVersion."""

    def __init__(self, client: Client, namespace: str, name: str) -> None:
        self.client, self.namespace, self.name = client, namespace, name
        self.lease: Obj | None = None

    async def get(self) -> tuple[Record, bytes]:
        self.lease = await self.client.get(R.LEASES, self.name, self.namespace)
        spec = self.lease.get("spec") or {}
        return Record.from_spec(spec), json.dumps(spec, sort_keys=True).encode()

    async def create(self, record: Record) -> None:
        self.lease = await self.client.create(R.LEASES, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace}, "spec": record.spec()}, self.namespace)

    async def update(self, record: Record) -> None:
        if self.lease is None:
            raise ApiError(409, "Conflict", "the lease has not been read yet")
        self.lease = await self.client.replace(R.LEASES, {**self.lease, "spec": record.spec()})

    async def changes(self) -> AsyncIterator[tuple[Record, bytes]]:
        """The record each time the Lease changes, from a watch (ends for good if watching it
        is not allowed: the caller then sees changes only when it reads)."""
        while True:
            try:
                async for event in self.client.watch(R.LEASES, self.namespace,
                                                     field_selector=f"metadata.name={self.name}"):
                    if event.type in ("ADDED", "MODIFIED"):
                        spec = event.object.get("spec") or {}
                        yield Record.from_spec(spec), json.dumps(spec, sort_keys=True).encode()
            except ApiError as exc:
                if exc.code in (401, 403):
                    return
            except ApiUnavailable:
                pass
            await asyncio.sleep(1)


class LeaderElector:
    """Runs `lead` only while this process holds the Lease (client-go's LeaderElector.Run)."""

    def __init__(self, config: ElectionConfig, lock: Lock, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config, self.lock, self.clock, self.wall = config, lock, clock, wall
        self.observed: Record | None = None
        self.observed_raw = b""
        self.observed_time = 0.0
        self.on_new_leader: Callable[[str], None] | None = None
        self._reported = ""
        self._woken = asyncio.Event()  # a change of the Lease observed while waiting

    @property
    def leader(self) -> str:
        """The holder last observed ("" before any)."""
        return self.observed.holder if self.observed is not None else ""

    def is_leader(self) -> bool:
        return self.leader == self.config.identity

    def lease_valid(self, now: float) -> bool:
        return self.observed is not None and self.observed_time + self.observed.lease_duration_seconds > now

    def _observe(self, record: Record, raw: bytes | None = None) -> None:
        self.observed, self.observed_time = record, self.clock()
        if raw is not None:
            self.observed_raw = raw

    def _report(self) -> None:
        if self.leader != self._reported:
            self._reported = self.leader
            log.info("leader of lease %s/%s is now %s", self.config.namespace, self.config.name,
                     self._reported or "nobody")
            if self.on_new_leader is not None:
                self.on_new_leader(self._reported)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards. No API server
        answering is a failed attempt, as any other error (the renew deadline decides)."""
        try:
            return await self._try_acquire_or_renew()
        except ApiUnavailable as exc:
            log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = self.wall()
        record = Record(self.config.identity, int(self.config.lease_duration), micro_time(now), micro_time(now), 0)
        if self.is_leader() and self.lease_valid(self.clock()):
            assert self.observed is not None
            mine = replace(record, acquire_time=self.observed.acquire_time, transitions=self.observed.transitions)
            try:
                await self.lock.update(mine)
            except ApiError as exc:
                log.info("optimistic lease update failed (%s); reading it again", exc.message)
            else:
                self._observe(mine)
                return True
        try:
            old, raw = await self.lock.get()
        except ApiError as exc:
            if exc.code != 404:
                log.warning("reading lease %s/%s: %s", self.config.namespace, self.config.name, exc.message)
                return False
            try:
                await self.lock.create(record)
            except ApiError as create_exc:
                log.info("creating lease %s/%s: %s", self.config.namespace, self.config.name, create_exc.message)
                return False
            self._observe(record)
            return True
        if raw != self.observed_raw:
            self._observe(old, raw)
        if old.holder and self.lease_valid(self.clock()) and not self.is_leader():
            return False
        # a renewing holder keeps its acquire time; a new one counts a transition
        record = (replace(record, acquire_time=old.acquire_time, transitions=old.transitions) if self.is_leader()
                  else replace(record, transitions=old.transitions + 1))
        try:
            await self.lock.update(record)
        except ApiError as exc:
            log.info("updating lease %s/%s: %s", self.config.namespace, self.config.name, exc.message)
            return False
        self._observe(record)
        return True

    async def acquire(self) -> None:
        """Try until this process holds the Lease (client-go's acquire, JitterUntil). Meanwhile,
        where the lock can watch the Lease, each renewal is observed when it happens rather
        than at the next attempt (client-go only reads it then): the holder's lease is then
        known to run out `lease_duration` after its last renewal, not up to a jittered retry
        period later, and the attempt is made at that moment (`next_attempt_in`)."""
        log.info("attempting to acquire leader lease %s/%s...", self.config.namespace, self.config.name)
        changes = getattr(self.lock, "changes", None)
        following = asyncio.create_task(self._follow(changes())) if changes is not None else None
        try:
            while True:
                acquired = await self.try_acquire_or_renew()
                self._report()
                if acquired:
                    log.info("successfully acquired lease %s/%s", self.config.namespace, self.config.name)
                    return
                await self._sleep_until_attempt()
        finally:
            if following is not None:
                following.cancel()

    async def _follow(self, changes: AsyncIterator[tuple[Record, bytes]]) -> None:
        async for record, raw in changes:
            if raw != self.observed_raw:
                self._observe(record, raw)
                self._woken.set()

    async def _sleep_until_attempt(self) -> None:
        """Until the next attempt is due; a change seen meanwhile sets the time again."""
        while True:
            self._woken.clear()
            delay = self.next_attempt_in()
            try:
                await asyncio.wait_for(self._woken.wait(), delay)
            except TimeoutError:
                return

    def next_attempt_in(self) -> float:
        """client-go's jittered retry period, or sooner: just after the holder's lease runs out
        as observed here (the same rule decides; only the attempt is not left to the next tick,
        which would add up to a retry period to every failover)."""
        delay = self.config.retry_period * (1 + random.random() * JITTER_FACTOR)
        if self.observed is not None and self.observed.holder and not self.is_leader():
            expires_in = self.observed_time + self.observed.lease_duration_seconds - self.clock()
            if 0 <= expires_in < delay:
                return expires_in + 0.01
        return delay

    async def renew(self) -> None:
        """Renew every retry_period; return when renewing failed for renew_deadline."""
        while True:
            deadline = self.clock() + self.config.renew_deadline
            renewed = False
            while self.clock() < deadline:
                try:
                    renewed = await asyncio.wait_for(self.try_acquire_or_renew(),
                                                     max(0.0, deadline - self.clock()))
                except TimeoutError:
                    renewed = False
                if renewed:
                    break
                await asyncio.sleep(min(self.config.retry_period, max(0.0, deadline - self.clock())))
            self._report()
            if not renewed:
                log.warning("failed to renew lease %s/%s within %gs: stopping", self.config.namespace,
                            self.config.name, self.config.renew_deadline)
                return
            await asyncio.sleep(self.config.retry_period)

    async def release(self) -> None:
        """Give the Lease up (empty holder, 1 s) so a waiting copy takes over at once."""
        if not self.is_leader() or self.observed is None:
            return
        now = micro_time(self.wall())
        record = Record("", 1, now, now, self.observed.transitions)
        try:
            await self.lock.update(record)
        except (ApiError, ApiUnavailable) as exc:
            log.warning("releasing lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return
        self._observe(record)

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Acquire, then run `lead()` while renewing; return when `lead` ends or renewal fails
        (then `lead` is cancelled first). Released on the way out if configured; an error of
        `lead` is raised after that."""
        await self.acquire()
        work = asyncio.create_task(lead(), name=f"leading-{self.config.name}")
        renewing = asyncio.create_task(self.renew(), name=f"renewing-{self.config.name}")
        outcome: list[BaseException | None] = []
        try:
            await asyncio.wait({work, renewing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, renewing):
                task.cancel()
            outcome = list(await asyncio.gather(work, renewing, return_exceptions=True))
            if self.config.release_on_cancel:
                await asyncio.shield(self.release())
        error = outcome[0] if outcome else None
        if isinstance(error, Exception):
            raise error
