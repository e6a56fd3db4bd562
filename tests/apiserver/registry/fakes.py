"""In-memory stand-ins for what the registry reads and writes (its `interfaces`)."""
from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

from kubecore.api.errors import already_exists, not_found
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj


def _content(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


class FakeStorage:
    """Objects in a dict; every write takes the next revision, as etcd's would."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.revision = 1
        self.writes: list[tuple[str, str]] = []  # (verb, key)

    def _store(self, key: str, obj: Obj) -> Obj:
        self.revision += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.revision)
        self.objects[key] = copy.deepcopy(obj)
        return obj

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get(rt.key(namespace, name))
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return copy.deepcopy(obj)

    async def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[Obj], int]:
        prefix = rt.key_prefix(namespace)
        return [copy.deepcopy(o) for k, o in sorted(self.objects.items()) if k.startswith(prefix)], self.revision

    async def create(self, rt: ResourceType, obj: Obj) -> Obj:
        key = rt.key(obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if key in self.objects:
            raise already_exists(rt.plural, obj["metadata"]["name"], rt.group)
        self.writes.append(("create", key))
        return self._store(key, obj)

    async def update(self, rt: ResourceType, namespace: str | None, name: str, mutate) -> tuple[Obj, bool]:
        current = await self.get(rt, namespace, name)
        new = await mutate(copy.deepcopy(current))
        if new is None or _content(new) == _content(current):
            return current, False
        self.writes.append(("update", rt.key(namespace, name)))
        return self._store(rt.key(namespace, name), new), True

    async def delete(self, rt: ResourceType, namespace: str | None, name: str, precondition=None) -> Obj:
        current = await self.get(rt, namespace, name)
        if precondition is not None:
            precondition(current)
        key = rt.key(namespace, name)
        del self.objects[key]
        self.writes.append(("delete", key))
        self.revision += 1
        current["metadata"]["resourceVersion"] = str(self.revision)
        return current


@dataclass
class FakeCache:
    """A watch cache with nothing in it yet: the registry falls back to the storage."""
    objects: dict[str, tuple[Obj, int]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def current(self, prefix: str) -> Iterator[tuple[Obj, int]]:
        return iter([entry for key, entry in self.objects.items() if key.startswith(prefix)])
