"""Reading one object the way kube's authenticators and admission plugins read through their
listers: from the watch cache, and from storage when the cache has not seen it (yet: a pod
created a moment ago), so a cache a moment behind never makes an object look missing."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import CachedObjects, ObjectStorage


class ObjectGetter(Protocol):
    async def get(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The object, or None where there is none."""
        ...


class CachedGetter:
    """Objects from the watch caches, and from storage when the cache has not seen one."""

    def __init__(self, caches: Mapping[str, CachedObjects], storage: ObjectStorage) -> None:
        self.caches, self.storage = caches, storage

    async def get(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj | None:
        cache = self.caches.get(rt.plural)
        if cache is not None and cache.ready.is_set():
            hit = cache.objects.get(rt.key(namespace, name))
            if hit is not None:
                return hit[0]
        try:
            return await self.storage.get(rt, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
