"""core/v1 Events about objects, posted the way client-go's record.EventRecorder does.

Events are for the humans reading `kubectl describe`; they must never slow down or fail
the work they describe. So `EventRecorder.event()` only puts the event on a bounded queue
(a full queue drops it) and returns; one background task per recorder writes them in
order, and a write that fails is logged and dropped.

Before writing, the `Correlator` (client-go's EventCorrelator, simplified) decides, as a
pure function of what it has seen and the time:

- a repeat of an event (same source, object, type, reason and message) seen less than
  `AGGREGATION_WINDOW` seconds ago is not a new Event: the existing one gets `count`
  incremented and `lastTimestamp` moved (a merge patch);
- each object has a token bucket of `SPAM_BURST` events refilled one per
  `SPAM_REFILL_SECONDS` (client-go's spam filter): a controller stuck in a loop cannot
  flood etcd with Events about one object.

Layer: above the REST client (`kubecore.client.rest`), beside the informer; services hold a
recorder each and call `event()` from their workers.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient, ApiUnavailable

log = logging.getLogger("kubecore.client.events")

NORMAL, WARNING = "Normal", "Warning"
AGGREGATION_WINDOW = 600.0  # seconds within which a repeat only counts up the existing Event
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
CACHE_SIZE = 4096  # events and buckets remembered (least recently seen go first)
QUEUE_SIZE = 1000
MAX_MESSAGE = 1024  # kube-apiserver refuses longer notes; a message is for reading anyway


# --- building an Event (pure) ------------------------------------------------------------------

def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj, field_path: str | None = None) -> Obj:
    """The involvedObject of an Event about `obj` (which must carry kind and apiVersion,
    as informer and client objects do)."""
    meta = obj.get("metadata") or {}
    kind, name = obj.get("kind"), meta.get("name")
    if not kind or not name:
        raise ValueError(f"cannot refer to an object without kind and name: {kind!r}/{name!r}")
    ref: Obj = {"kind": kind, "namespace": meta.get("namespace") or "", "name": name,
                "uid": meta.get("uid") or "", "apiVersion": obj.get("apiVersion") or "",
                "resourceVersion": meta.get("resourceVersion") or ""}
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


def make_event(ref: Obj, event_type: str, reason: str, message: str, *, component: str,
               host: str = "", instance: str = "", now: float, now_ns: int) -> Obj:
    """A new Event (count 1), named `<object name>.<nanoseconds in hex>` as client-go
    names them. Events about cluster-scoped objects live in `default`."""
    stamp = rfc3339(now)
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{ref['name']}.{now_ns:016x}",
                     "namespace": ref.get("namespace") or "default"},
        "involvedObject": ref,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "type": event_type,
        "source": source,
        "reportingComponent": component,
        "reportingInstance": host or instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


EventKey = tuple[str, ...]


def event_key(ev: Obj) -> EventKey:
    """What makes two events the same event (client-go's getEventKey)."""
    ref, source = ev.get("involvedObject") or {}, ev.get("source") or {}
    return (source.get("component", ""), source.get("host", ""), ref.get("kind", ""),
            ref.get("namespace", ""), ref.get("name", ""), ref.get("fieldPath", ""),
            ref.get("uid", ""), ref.get("apiVersion", ""), ev.get("type", ""),
            ev.get("reason", ""), ev.get("message", ""))


def spam_key(ev: Obj) -> EventKey:
    """One token bucket per source and object."""
    ref, source = ev.get("involvedObject") or {}, ev.get("source") or {}
    return (source.get("component", ""), source.get("host", ""), ref.get("kind", ""),
            ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""),
            ref.get("apiVersion", ""))


# --- the correlator (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What to do with one event: `create` it, `patch` (the existing Event named in
    `event`, with `patch`), or `drop` it (over its object's budget)."""
    action: Literal["create", "patch", "drop"]
    event: Obj
    patch: Obj | None = None


@dataclass
class _Seen:
    name: str
    count: int
    first_timestamp: str
    at: float


@dataclass
class _Bucket:
    tokens: float
    at: float


class Correlator:
    """Remembers the Events written (by key) and each object's token bucket. `decide`
    says what to do with an event; `observed` records what the server then holds.
    `now` is any monotonic clock in seconds."""

    def __init__(self, *, window: float = AGGREGATION_WINDOW, burst: int = SPAM_BURST,
                 refill_seconds: float = SPAM_REFILL_SECONDS, size: int = CACHE_SIZE) -> None:
        self.window, self.burst, self.refill_seconds, self.size = window, burst, refill_seconds, size
        self._seen: OrderedDict[EventKey, _Seen] = OrderedDict()
        self._buckets: OrderedDict[EventKey, _Bucket] = OrderedDict()

    def _take_token(self, key: EventKey, now: float) -> bool:
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst),
                            bucket.tokens + (now - bucket.at) / self.refill_seconds)
        bucket.at = now
        self._buckets[key] = bucket
        _trim(self._buckets, self.size)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def decide(self, ev: Obj, now: float) -> Decision:
        if not self._take_token(spam_key(ev), now):
            return Decision("drop", ev)
        seen = self._seen.get(event_key(ev))
        if seen is None or now - seen.at > self.window:
            return Decision("create", ev)
        repeat = copy.deepcopy(ev)
        repeat["metadata"]["name"] = seen.name
        repeat["count"] = seen.count + 1
        repeat["firstTimestamp"] = seen.first_timestamp
        return Decision("patch", repeat,
                        {"count": repeat["count"], "lastTimestamp": ev["lastTimestamp"]})

    def observed(self, ev: Obj, written: Obj, now: float) -> None:
        """The server now holds `written` for `ev` (its answer to the create or patch)."""
        key = event_key(ev)
        self._seen.pop(key, None)
        self._seen[key] = _Seen(written["metadata"]["name"], int(written.get("count") or 1),
                                str(written.get("firstTimestamp") or ""), now)
        _trim(self._seen, self.size)

    def forget(self, ev: Obj) -> None:
        self._seen.pop(event_key(ev), None)


def _trim(cache: OrderedDict[Any, Any], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)


# --- the recorder (I/O) ------------------------------------------------------------------------

class EventRecorder:
    """Posts Events from one component (`default-scheduler`, `kubelet` with the node as
    `host`, `replicaset-controller`, ...). Call `event()` from inside the event loop;
    `close()` when done, which writes what is queued (within a timeout)."""

    def __init__(self, client: ApiClient, component: str, *, host: str = "",
                 instance: str = "", queue_size: int = QUEUE_SIZE,
                 correlator: Correlator | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.instance = instance or f"{component}-{socket.gethostname()}"
        self.correlator = correlator or Correlator()
        self.clock, self.monotonic = clock, monotonic
        self.stats: Counter[str] = Counter()  # created, patched, dropped_*, failed
        self._queue: asyncio.Queue[Obj] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_ns = 0

    def event(self, obj: Obj, event_type: str, reason: str, message: str, *,
              field_path: str | None = None) -> None:
        """Queue an Event about `obj`. Never blocks, never raises."""
        try:
            if event_type not in (NORMAL, WARNING):
                raise ValueError(f"event type {event_type!r} is neither Normal nor Warning")
            ev = make_event(object_reference(obj, field_path), event_type, reason, message,
                            component=self.component, host=self.host, instance=self.instance,
                            now=self.clock(), now_ns=self._unique_ns())
            if self._closed:
                raise RuntimeError("the recorder is closed")
            self._ensure_writer()
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.stats["dropped_queue_full"] += 1
            log.warning("event queue full; dropping %s %s", reason, message[:80])
        except Exception as exc:
            self.stats["failed"] += 1
            log.error("cannot record event %s: %s", reason, exc)

    def _unique_ns(self) -> int:
        """Nanoseconds for the name, never the same twice from this recorder."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    def _ensure_writer(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._write_all(), name=f"events-{self.component}")

    async def flush(self) -> None:
        """Wait until everything queued so far has been written (or dropped)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            log.warning("%d event(s) not written before shutdown", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _write_all(self) -> None:
        while True:
            ev = await self._queue.get()
            try:
                await self._write(ev)
            except (ApiError, ApiUnavailable) as exc:
                self.stats["failed"] += 1
                ref = ev["involvedObject"]
                log.warning("event %s about %s %s/%s dropped: %s", ev["reason"], ref.get("kind"),
                            ref.get("namespace", ""), ref.get("name"), exc,
                            extra={"key": f"{ref.get('namespace', '')}/{ref.get('name')}"})
            except Exception:
                self.stats["failed"] += 1
                log.exception("event %s dropped", ev.get("reason"))
            finally:
                self._queue.task_done()

    async def _write(self, ev: Obj) -> None:
        now = self.monotonic()
        decision = self.correlator.decide(ev, now)
        if decision.action == "drop":
            self.stats["dropped_spam"] += 1
            log.debug("too many events about %s; dropping %s", ev["involvedObject"].get("name"),
                      ev["reason"])
            return
        namespace = ev["metadata"]["namespace"]
        written: Obj | None = None
        if decision.action == "patch":
            try:
                written = await self.client.patch(R.EVENTS, decision.event["metadata"]["name"],
                                                  decision.patch, namespace)
                self.stats["patched"] += 1
            except ApiError as exc:
                if exc.code != 404:
                    raise
                self.correlator.forget(ev)  # expired or deleted: start a new one
        if written is None:
            written = await self.client.create(R.EVENTS, ev, namespace)
            self.stats["created"] += 1
        self.correlator.observed(ev, written, now)
