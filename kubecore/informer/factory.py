"""Informers shared within a process, and waiting until their caches have synced.

`SharedInformerFactory` hands out one informer per (resource, namespace, selectors), so the
controllers living in one process share one watch and one cache (client-go's
SharedInformerFactory); `wait_for_cache_sync` is what a controller awaits before it acts.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping

from kubecore.api.resources import ResourceType
from kubecore.client.rest import ApiClient
from kubecore.informer.informer import Informer
from kubecore.informer.store import IndexFunc


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
