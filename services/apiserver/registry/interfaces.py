"""What the registry needs from the layer below, as narrow Protocols: the object storage
(`storage.store.Storage` over etcd in the server; an in-memory fake in the tests) and a
watch cache's current objects (`storage.watchcache.WatchCache`)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Protocol

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj

Mutation = Callable[[Obj], Awaitable[Obj | None]]
Precondition = Callable[[Obj], None]


class ObjectStorage(Protocol):
    """Objects by kind, namespace and name; every write is atomic against the stored version."""

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj: ...

    async def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[Obj], int]: ...

    async def create(self, rt: ResourceType, obj: Obj) -> Obj: ...

    async def update(self, rt: ResourceType, namespace: str | None, name: str,
                     mutate: Mutation) -> tuple[Obj, bool]:
        """Read-modify-write: `mutate` gets the stored object and returns the new one, or None
        for "no change"; -> (the object, whether it was written). 404 if there is none."""
        ...

    async def delete(self, rt: ResourceType, namespace: str | None, name: str,
                     precondition: Precondition | None = None) -> Obj:
        """Delete if `precondition` (which raises to refuse) accepts the stored object."""
        ...


class CachedObjects(Protocol):
    """A watch cache's view of one kind: its current objects by etcd key."""

    @property
    def objects(self) -> Mapping[str, tuple[Obj, int]]: ...

    @property
    def ready(self) -> asyncio.Event: ...

    def current(self, prefix: str) -> Iterator[tuple[Obj, int]]: ...
