"""Informers: a local, indexed, always-catching-up copy of one kind of object.

Three layers, one concern each (as in client-go):

- `Store`: objects keyed `namespace/name` (cluster-scoped: `name`) with named
  indexes. Pure and synchronous; the only thing controllers read.
- `Reflector`: keeps a `Delivery` current from the API server. It lists, then
  watches from the list's resourceVersion. A broken connection is re-watched from
  the last version seen, with exponential backoff; a 410 Expired (the server no
  longer has the events since then) is answered with a relist, and the relist is
  delivered as differences, so a deletion that happened meanwhile still arrives
  as a delete.
- `Informer`: applies what the reflector delivers to its store and fans each
  change out to handlers (`on_add`, `on_update`, `on_delete`). Handlers should only
  enqueue keys; a handler that raises is logged and the others still run.

`SharedInformerFactory` hands out one informer per (resource, namespace, selectors),
so controllers living in one process share one watch and one cache.

Objects in the store and given to handlers are shared: treat them as read-only.
"""
from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient, ApiUnavailable, Expired

log = logging.getLogger("kubecore.informer.informer")
IndexFunc = Callable[[Obj], Iterable[str]]
AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects: the work-queue key."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str | None, str]:
    """`ns/name` -> (ns, name); `name` -> (None, name)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


# -- the store ---------------------------------------------------------------------------

class Store:
    """Objects by key, plus named indexes: index name -> indexed value -> set of keys."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexers(indexers or {})

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        for name, fn in indexers.items():
            if name in self._indexers:
                if self._indexers[name] is fn:
                    continue
                raise ValueError(f"indexer {name!r} already exists")
            self._indexers[name] = fn
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    # reads
    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_object(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        return [self._items[k] for k in sorted(self.index_keys(index_name, value))]

    def index_keys(self, index_name: str, value: str) -> set[str]:
        if index_name not in self._indices:
            raise KeyError(f"no index named {index_name!r}")
        return set(self._indices[index_name].get(value, ()))

    def index_values(self, index_name: str) -> builtins.list[str]:
        return [v for v, keys in self._indices[index_name].items() if keys]

    # writes (by the informer)
    def upsert(self, obj: Obj) -> Obj | None:
        """Put `obj`; return what it replaced."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index_one(name, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index_values(self, name: str, obj: Obj) -> builtins.list[str]:
        try:
            return [str(v) for v in self._indexers[name](obj) or ()]
        except Exception:
            log.exception("indexer %s failed on %s", name, object_key(obj),
                          extra={"key": object_key(obj)})
            return []

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._index_values(name, obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, index in self._indices.items():
            for value in self._index_values(name, obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


# -- the reflector -----------------------------------------------------------------------

class Delivery(Protocol):
    """Where a reflector puts what it learns (the informer)."""

    async def replace(self, items: list[Obj], resource_version: str) -> None: ...
    async def apply(self, event_type: str, obj: Obj) -> None: ...


class Backoff:
    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial, self.cap = initial, cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next = self.initial


class Reflector:
    """List, then watch from the list's version; re-watch on a broken stream; relist on 410."""

    def __init__(self, client: ApiClient, rt: ResourceType, delivery: Delivery, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, backoff_cap: float = 5.0,
                 watch_timeout: tuple[int, int] = (300, 600), name: str = "") -> None:
        self.client = client
        self.rt = rt
        self.delivery = delivery
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.backoff = Backoff(cap=backoff_cap)
        self.watch_timeout = watch_timeout  # the server ends each watch after a random spell
        self.name = name or rt.plural
        self.resource_version = ""  # the newest version delivered (or bookmarked)
        self.relists = 0
        self.rewatches = 0

    async def run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    items, rv = await self.client.list(
                        self.rt, self.namespace, label_selector=self.label_selector,
                        field_selector=self.field_selector)
                    await self.delivery.replace(items, rv)
                    self.resource_version = rv
                    self.relists += 1
                    need_list = False
                    self.backoff.reset()
                if await self._watch():
                    self.backoff.reset()
                    continue
                delay = self.backoff.next()  # a watch that ended at once: do not spin
            except Expired as exc:
                log.info("%s: resourceVersion %s expired (%s); relisting", self.name,
                         self.resource_version, exc.message)
                need_list = True
                continue
            except ApiUnavailable as exc:
                delay = self.backoff.next()
                log.warning("%s: API server unavailable (%s); retrying in %.1fs", self.name, exc,
                            delay)
            except ApiError as exc:
                delay = self.backoff.next()
                log.warning("%s: %s %s: %s; retrying in %.1fs", self.name, exc.code, exc.reason,
                            exc.message, delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = self.backoff.next()
                log.exception("%s: reflector failed; retrying in %.1fs", self.name, delay)
            self.rewatches += 1
            await asyncio.sleep(delay)

    async def _watch(self) -> bool:
        """One watch, until the server ends it. True if it was worth the connection (it
        delivered something or lasted a while), so the next one may start at once."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        delivered = False
        stream = self.client.watch(
            self.rt, self.namespace, resource_version=self.resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=random.randint(*self.watch_timeout), allow_bookmarks=True)
        async with contextlib.aclosing(stream):
            async for event in stream:
                delivered = True
                if event.type != "BOOKMARK":
                    await self.delivery.apply(event.type, event.object)
                if event.resource_version:
                    self.resource_version = event.resource_version
        return delivered or loop.time() - started > 1.0


# -- the informer ------------------------------------------------------------------------

class Handlers:
    def __init__(self, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: DeleteHandler | None) -> None:
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete


class Informer:
    """A store kept current by a reflector, with event handlers. `start()` it, wait for
    `synced` (or `wait_for_cache_sync`), read `store`."""

    def __init__(self, client: ApiClient, rt: ResourceType, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 indexers: Mapping[str, IndexFunc] | None = None,
                 resync_period: float | None = None, backoff_cap: float = 5.0,
                 name: str = "") -> None:
        self.rt = rt
        self.name = name or _informer_name(rt, namespace, label_selector, field_selector)
        self.store = Store(indexers)
        self.resync_period = resync_period
        self.synced = asyncio.Event()
        self.reflector = Reflector(client, rt, self, namespace=namespace,
                                   label_selector=label_selector, field_selector=field_selector,
                                   backoff_cap=backoff_cap, name=self.name)
        self._handlers: list[Handlers] = []
        self._lock = asyncio.Lock()  # one change at a time, store and handlers together
        self._tasks: list[asyncio.Task[None]] = []
        self._late: set[asyncio.Task[None]] = set()

    # -- set-up ----------------------------------------------------------------------
    def add_handlers(self, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                     on_delete: DeleteHandler | None = None) -> Handlers:
        """Register handlers. Added after the first sync, they are first told about every
        object already in the store (as adds), like client-go's late handlers."""
        handlers = Handlers(on_add, on_update, on_delete)
        self._handlers.append(handlers)
        if self.synced.is_set() and on_add is not None:
            task = asyncio.get_running_loop().create_task(self._catch_up(handlers))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        return handlers

    def remove_handlers(self, handlers: Handlers) -> None:
        self._handlers.remove(handlers)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.store.add_indexers(indexers)

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def has_synced(self) -> bool:
        return self.synced.is_set()

    @property
    def last_sync_resource_version(self) -> str:
        return self.reflector.resource_version

    async def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.reflector.run(), name=f"reflector-{self.name}"))
        if self.resync_period:
            self._tasks.append(loop.create_task(self._resync_loop(), name=f"resync-{self.name}"))

    async def stop(self) -> None:
        tasks = self._tasks + list(self._late)
        self._tasks = []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- Delivery, from the reflector ------------------------------------------------
    async def replace(self, items: list[Obj], resource_version: str) -> None:
        """A (re)list: deliver what changed since the store's content, deletions included."""
        async with self._lock:
            fresh = {object_key(o): o for o in items}
            for key in [k for k in self.store.keys() if k not in fresh]:
                gone = self.store.remove(key)
                if gone is not None:
                    await self._dispatch("delete", gone)
            for obj in fresh.values():
                old = self.store.upsert(obj)
                if old is None:
                    await self._dispatch("add", obj)
                elif _rv(old) != _rv(obj):
                    await self._dispatch("update", old, obj)
            if not self.synced.is_set():
                log.info("%s: synced %d objects at resourceVersion %s", self.name, len(fresh),
                         resource_version)
            self.synced.set()

    async def apply(self, event_type: str, obj: Obj) -> None:
        async with self._lock:
            if event_type == "DELETED":
                gone = self.store.remove(object_key(obj))
                if gone is not None:
                    await self._dispatch("delete", obj)
                return
            old = self.store.upsert(obj)
            if old is None:
                await self._dispatch("add", obj)
            else:
                await self._dispatch("update", old, obj)

    # -- handlers --------------------------------------------------------------------
    async def _dispatch(self, what: str, *objs: Obj) -> None:
        for handlers in list(self._handlers):
            fn = getattr(handlers, f"on_{what}")
            if fn is not None:
                await self._call(fn, what, *objs)

    async def _call(self, fn: Callable[..., Any], what: str, *objs: Obj) -> None:
        key = object_key(objs[-1])
        try:
            result = fn(*objs)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: %s handler failed for %s", self.name, what, key,
                          extra={"key": key})

    async def _catch_up(self, handlers: Handlers) -> None:
        async with self._lock:
            if handlers in self._handlers and handlers.on_add is not None:
                for obj in self.store.list():
                    await self._call(handlers.on_add, "add", obj)

    async def _resync_loop(self) -> None:
        """Every period, tell handlers about every object again (on_update(obj, obj)), so
        that a controller that dropped a key gets another chance at it."""
        assert self.resync_period
        await self.synced.wait()
        while True:
            await asyncio.sleep(self.resync_period)
            async with self._lock:
                for obj in self.store.list():
                    await self._dispatch("update", obj, obj)


def _informer_name(rt: ResourceType, namespace: str | None, label_selector: str | None,
                   field_selector: str | None) -> str:
    parts = [rt.group_resource]
    if namespace:
        parts.append(f"ns={namespace}")
    if label_selector:
        parts.append(f"labels={label_selector}")
    if field_selector:
        parts.append(f"fields={field_selector}")
    return " ".join(parts)


async def wait_for_cache_sync(*informers: Informer, timeout: float | None = None) -> bool:
    """True once every informer has synced; False if `timeout` passes first."""
    try:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), timeout)
    except TimeoutError:
        return False
    return True


class SharedInformerFactory:
    """One informer per (resource, namespace, label selector, field selector), shared by
    every controller in the process. Ask for informers, then `start()`."""

    def __init__(self, client: ApiClient, *, resync_period: float | None = None,
                 namespace: str | None = None) -> None:
        self.client = client
        self.resync_period = resync_period
        self.namespace = namespace
        self._informers: dict[tuple[str, str | None, str | None, str | None], Informer] = {}
        self._running = False
        self._starting: set[asyncio.Task[None]] = set()

    def informer(self, rt: ResourceType, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
        ns = namespace if namespace is not None else self.namespace
        if not rt.namespaced:
            ns = None
        key = (rt.group_resource, ns or None, label_selector or None, field_selector or None)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, rt, namespace=ns, label_selector=label_selector,
                                field_selector=field_selector, resync_period=self.resync_period)
            self._informers[key] = informer
            if self._running:  # asked for after start(): run it too
                task = asyncio.get_running_loop().create_task(informer.start())
                self._starting.add(task)
                task.add_done_callback(self._starting.discard)
        if indexers:
            informer.add_indexers(indexers)
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def start(self) -> None:
        self._running = True
        for informer in self._informers.values():
            await informer.start()

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))

    def has_synced(self) -> bool:
        return all(i.has_synced() for i in self._informers.values())

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        return await wait_for_cache_sync(*self._informers.values(), timeout=timeout)
