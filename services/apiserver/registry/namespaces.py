"""A namespace's life after its DELETE, as kube's namespace controller runs it: the namespace
is marked Terminating at once, creates in it are refused from then on, its content is deleted
in the background (Background propagation) and the namespace itself goes last. A server that
restarts resumes the namespaces it left Terminating.

The deletes of the content go through the generic store like any client's (`Deleter`), so
finalizers and graceful deletion hold them as they would any DELETE.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, not_found
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import CachedObjects, ObjectStorage, Precondition
from services.apiserver.registry.meta import now_rfc3339

log = logging.getLogger("apiserver")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
# How a namespace's content is deleted: Background, as kube's namespace controller says it,
# so a GC finalizer an object carries (orphan, foregroundDeletion) goes instead of holding
# the namespace until the garbage collector gets to it.
PURGE: Obj = {"propagationPolicy": P.BACKGROUND}
NAMESPACE_RETRY_SECONDS = 1.0  # between passes over a Terminating namespace's content


class Deleter(Protocol):
    """How the content of a namespace is deleted: as a client's DELETE of each object."""

    async def delete_one(self, rt: R.ResourceType, namespace: str | None, name: str,
                         opts: Obj) -> Obj: ...


def _terminating(namespace: str) -> ApiError:
    return ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                    "because it is being terminated", {"name": namespace, "kind": "namespaces"})


class Namespaces:
    def __init__(self, storage: ObjectStorage, caches: Mapping[str, CachedObjects], deleter: Deleter) -> None:
        self.storage = storage
        self.caches = caches
        self.deleter = deleter
        # Namespaces this process marked Terminating; checked before the watch cache, which
        # may not have seen the mark yet when the next create arrives.
        self.terminating: set[str] = set()
        self.emptying: set[str] = set()  # namespaces whose content goes now
        self.tasks: set[asyncio.Task[None]] = set()

    async def ensure_open(self, namespace: str) -> None:
        """A create in `namespace` may go ahead: it exists and is not Terminating."""
        if namespace in self.terminating:
            raise _terminating(namespace)
        cache = self.caches["namespaces"]
        entry = cache.objects.get(R.NAMESPACES.key(None, namespace))
        if entry is None:
            # the cache may lag a namespace created a moment ago: ask etcd
            try:
                obj = await self.storage.get(R.NAMESPACES, None, namespace)
            except ApiError:
                raise not_found("namespaces", namespace) from None
        else:
            obj = entry[0]
        if (obj.get("status") or {}).get("phase") == "Terminating":
            raise _terminating(namespace)

    async def terminate(self, name: str, check: Precondition) -> Obj:
        """Mark the namespace Terminating, then delete its content in the background and
        the namespace last, as the namespace controller does."""
        if name in PROTECTED_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace '
                           "may not be deleted", {"name": name, "kind": "namespaces"})

        async def mark(current: Obj) -> Obj | None:
            check(current)
            if current["metadata"].get("deletionTimestamp"):
                return None
            current["metadata"]["deletionTimestamp"] = now_rfc3339()
            current.setdefault("status", {})["phase"] = "Terminating"
            return current

        obj, _ = await self.storage.update(R.NAMESPACES, None, name, mark)
        self._start_emptying(name)
        return obj

    async def resume(self) -> None:
        """At start-up: finish the namespaces a stopped server marked Terminating but did not
        empty (the namespace controller's work resumes after a restart in a real cluster)."""
        cache = self.caches["namespaces"]
        await cache.ready.wait()
        for obj, _ in list(cache.current(R.NAMESPACES.key_prefix())):
            if obj["metadata"].get("deletionTimestamp"):
                self._start_emptying(obj["metadata"]["name"])

    def cancel(self) -> None:
        """At shut-down: stop the emptiers (a restarted server resumes them)."""
        for task in list(self.tasks):
            task.cancel()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _start_emptying(self, name: str) -> None:
        self.terminating.add(name)
        if name not in self.emptying:  # one emptier per namespace in this process
            self.emptying.add(name)
            self.spawn(self._empty(name))

    async def _empty(self, name: str) -> None:
        try:
            await self._empty_until_gone(name)
        finally:
            self.emptying.discard(name)

    async def _empty_until_gone(self, name: str) -> None:
        # Until the namespace is gone, however long its content takes (a finalizer may hold
        # an object for hours): a pass that gave up would leave it Terminating for good.
        while True:
            try:
                if await self._delete_content(name) == 0:
                    await self.storage.delete(R.NAMESPACES, None, name)
                    self.terminating.discard(name)
                    return
            except ApiError as exc:
                if exc.code == 404:
                    self.terminating.discard(name)
                    return
                log.warning("namespace %s: deleting content: %s", name, exc)
            except Exception as exc:  # whatever one object does, keep going
                # An emptier that died would leave the namespace Terminating for good.
                log.warning("namespace %s: deleting content: %s: %s", name,
                            type(exc).__name__, exc)
            await asyncio.sleep(NAMESPACE_RETRY_SECONDS)

    async def _delete_content(self, name: str) -> int:
        """One pass: a DELETE of every object in the namespace; how many there were."""
        remaining = 0
        for rt in R.ALL:
            if not rt.namespaced:
                continue
            objs, _ = await self.storage.list(rt, name)
            for o in objs:
                remaining += 1
                try:
                    await self.deleter.delete_one(rt, name, o["metadata"]["name"], PURGE)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        return remaining
