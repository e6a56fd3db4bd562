"""The store: objects keyed `namespace/name` (cluster-scoped: `name`), with named indexes.

Pure and synchronous, like client-go's thread_safe_store + index: the informer writes it, and it
is the only thing controllers read. Objects in it are shared: treat them as read-only.
"""
from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Mapping

from kubecore.api.types import Obj

log = logging.getLogger("kubecore.informer.store")
IndexFunc = Callable[[Obj], Iterable[str]]


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects: the store and work-queue key."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name", "")
    key: str = f"{ns}/{name}" if ns else name
    return key


def split_key(key: str) -> tuple[str | None, str]:
    """`ns/name` -> (ns, name); `name` -> (None, name)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


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
