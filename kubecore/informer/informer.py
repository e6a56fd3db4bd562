"""The informer: a store kept current by a reflector, with each change fanned out to handlers.

It applies what the reflector delivers (a relist as differences against the store, then watch
events) to its `Store` and tells handlers (`on_add`, `on_update`, `on_delete`) about each
change, one change at a time. Handlers should only enqueue keys; a handler that raises is
logged and the others still run (client-go's shared_informer.go).

Objects in the store and given to handlers are shared: treat them as read-only.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.reflector import Reflector
from kubecore.informer.store import IndexFunc, Store, object_key

log = logging.getLogger("kubecore.informer.informer")
AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


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
