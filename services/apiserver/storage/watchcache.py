"""One etcd watch per resource, fanned out in memory to every HTTP watcher.

Like kube-apiserver's watch cache: the cache lists the resource once, then
watches etcd from that revision. It keeps the current objects (for watches that
start "now") and a bounded window of recent events (for watches that resume
from a resourceVersion). A watch from a version older than the window gets 410
Expired and its client relists. Each watcher has a bounded queue; one that
falls too far behind is ended instead of holding up the others.

Several objects can share one revision (writes grouped into one etcd
transaction, see `etcd.TxnBatcher`). A stream therefore only ever ends between
revisions: a client resuming from the last resourceVersion it saw has seen all
of that revision.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubecore.api import jsonwire
from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from services.apiserver.storage import etcd as E
from services.apiserver.storage.codec import PLAIN, ValueCodec

log = logging.getLogger("apiserver.watchcache")
DELETE = 1  # mvccpb.Event.EventType


@dataclass(slots=True)
class Event:
    revision: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    obj: Obj
    prev: Obj | None
    _json: bytes | None = None

    def json_line(self) -> bytes:
        """The wire form for plain JSON watchers, built once and shared."""
        if self._json is None:
            self._json = jsonwire.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._json


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue
    prefix: str
    since: int = 0  # events at or before this revision were sent already (or not wanted)
    closed: bool = False
    overflowed: bool = False
    # Overflowing at revision R may leave part of R's events queued; those are not sent,
    # so the client's last resourceVersion is a whole revision and a resume has no gap.
    cut_revision: int | None = None


@dataclass
class WatchCache:
    etcd: E.Etcd
    rt: ResourceType
    window: int = 50_000
    watcher_buffer: int = 20_000
    codec: ValueCodec = PLAIN  # the store's codec of this resource (encryption at rest)
    objects: dict[str, tuple[Obj, int]] = field(default_factory=dict)
    events: deque = field(default_factory=deque)
    floor: int = 0  # every event with revision > floor is in `events`
    revision: int = 0  # the newest revision this cache has applied
    subscribers: set[Subscriber] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.rt.plural}")

    def end_all(self) -> None:
        for sub in list(self.subscribers):
            self._end(sub)

    def cancel(self) -> None:
        if self._task:
            self._task.cancel()

    async def stop(self, timeout: float = 2.0) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout)
        for sub in list(self.subscribers):
            self._end(sub)

    async def _prime(self) -> None:
        kvs, rev, _ = await self.etcd.get_prefix(self.rt.key_prefix())
        self.objects = {}
        for kv in kvs:
            key = kv.key.decode()
            obj = self._decode(key, kv.value, kv.mod_revision)
            if obj is not None:
                self.objects[key] = (obj, kv.mod_revision)
        self.events.clear()
        self.floor = self.revision = rev
        for sub in list(self.subscribers):  # they cannot be continued across a relist
            self._end(sub)
        self.ready.set()

    async def _run(self) -> None:
        backoff = 0.1
        primed = False
        while True:
            try:
                if not primed:
                    await self._prime()
                    primed = True
                watch = await self.etcd.watch_prefix(self.rt.key_prefix(), self.revision + 1)
                backoff = 0.1
                try:
                    async for events in watch:  # one revision or more, always whole
                        for ev in events:
                            self._apply(ev)
                finally:
                    watch.cancel()
            except asyncio.CancelledError:
                raise
            except E.EtcdCompacted:
                log.warning("%s: etcd compacted past %d, relisting", self.rt.plural, self.revision)
                primed = False
            except Exception as exc:  # etcd gone or the stream broke: resume from our revision
                name = type(exc).__name__
                if "Compacted" in name:
                    primed = False
                log.warning("%s: etcd watch ended (%s: %s), resuming", self.rt.plural, name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _apply(self, ev: Any) -> None:
        kv = ev.kv
        rev = kv.mod_revision
        key = kv.key.decode()
        # the cache holds the previous object already; etcd's copy only when it does not
        entry = self.objects.get(key)
        prev = entry[0] if entry is not None else None
        if prev is None and ev.HasField("prev_kv") and ev.prev_kv.value:
            prev = self._decode(key, ev.prev_kv.value, ev.prev_kv.mod_revision)
        if ev.type == DELETE:
            if prev is None:
                self.revision = max(self.revision, rev)
                return
            obj = dict(prev)
            obj["metadata"] = {**prev.get("metadata", {}), "resourceVersion": str(rev)}
            self.objects.pop(key, None)
            event = Event(rev, "DELETED", key, obj, prev)
        else:
            decoded = self._decode(key, kv.value, rev)
            if decoded is None:  # unreadable: left out, as if it were not there
                self.objects.pop(key, None)
                self.revision = rev
                return
            obj = decoded
            etype = "ADDED" if kv.create_revision == rev else "MODIFIED"
            self.objects[key] = (obj, rev)
            event = Event(rev, etype, key, obj, prev if etype == "MODIFIED" else None)
        self.revision = rev
        self.events.append(event)
        if len(self.events) > self.window:
            self.floor = self.events.popleft().revision
        for sub in list(self.subscribers):
            if rev <= sub.since or not key.startswith(sub.prefix):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True
                sub.cut_revision = rev
                self._end(sub)

    def _decode(self, key: str, value: bytes, rev: int) -> Obj | None:
        """The object of a value, or None (logged) when no configured key opens it: one
        unreadable object must not stop the cache of its whole resource. A get of it
        answers the error (a 500 naming the key)."""
        try:
            return self.codec.decode(key, value, rev)
        except ApiError as exc:
            log.error("%s: %s", self.rt.plural, exc.message)
            return None

    def _end(self, sub: Subscriber) -> None:
        if not sub.closed:
            sub.closed = True
            self.subscribers.discard(sub)
            try:
                sub.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass  # the consumer sees `closed` when it next looks

    # -- the watcher side -------------------------------------------------------
    def current(self, prefix: str) -> Iterator[tuple[Obj, int]]:
        for key, entry in self.objects.items():
            if key.startswith(prefix):
                yield entry

    def too_old(self, resource_version: int) -> bool:
        return resource_version < self.floor

    def subscribe(self, prefix: str, since: int | None) -> tuple[Subscriber, list[Event]]:
        """Register a watcher. With `since`, also return the buffered events after it;
        without, the caller sends the current objects first (see `snapshot`). No await
        happens between reading the buffer and registering, so nothing falls in between."""
        # A client may resume from a version this cache has not applied yet (it listed from
        # etcd a moment ago): `since` keeps those older events out when they arrive.
        sub = Subscriber(asyncio.Queue(maxsize=self.watcher_buffer), prefix,
                         since if since is not None else self.revision)
        backlog: list[Event] = []
        if since is not None:
            for ev in reversed(self.events):
                if ev.revision <= since:
                    break
                if ev.key.startswith(prefix):
                    backlog.append(ev)
            backlog.reverse()
        self.subscribers.add(sub)
        return sub, backlog

    def snapshot(self, prefix: str) -> tuple[list[Event], int]:
        events = [Event(rev, "ADDED", "", obj, None) for obj, rev in self.current(prefix)]
        events.sort(key=lambda e: e.revision)
        return events, self.revision

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.closed = True
        self.subscribers.discard(sub)
