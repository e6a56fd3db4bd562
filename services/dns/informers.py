"""The watch side's wiring: kubecore informers on Services and EndpointSlices -> RecordIndex.

Handlers only hand objects to the index (a few dict lookups, no I/O), so the informer
never waits on DNS. The index is marked synced only once *both* informers have listed:
with Services but no slices yet, a headless name would get a wrong empty answer, and
before any list every name would get a wrong NXDOMAIN. Until then the zone answers
SERVFAIL and /readyz says 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubecore.api import resources as R
from kubecore.informer.factory import SharedInformerFactory, wait_for_cache_sync
from kubecore.informer.informer import Informer

from .records import RecordIndex

log = logging.getLogger(__name__)


def _namespace_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def attach_informers(
    index: RecordIndex, factory: SharedInformerFactory
) -> tuple[Informer, Informer]:
    """Register the index's handlers on the factory's (all-namespace) informers."""
    services = factory.informer(R.SERVICES)
    slices = factory.informer(R.ENDPOINTSLICES)
    services.add_handlers(
        on_add=index.upsert_service,
        on_update=lambda _old, new: index.upsert_service(new),
        on_delete=lambda obj: index.delete_service(*_namespace_name(obj)),
    )
    slices.add_handlers(
        on_add=index.upsert_endpointslice,
        on_update=lambda _old, new: index.upsert_endpointslice(new),
        on_delete=lambda obj: index.delete_endpointslice(*_namespace_name(obj)),
    )
    return services, slices


async def mark_synced_when_listed(index: RecordIndex, informers: tuple[Informer, ...]) -> None:
    """Wait (without limit: the API server may come up later) for every initial list."""
    await wait_for_cache_sync(*informers)
    index.mark_synced()


class ClusterWatch:
    """Informers feeding one index, started and stopped as a unit."""

    def __init__(self, index: RecordIndex, factory: SharedInformerFactory) -> None:
        self.index = index
        self.factory = factory
        self.informers = attach_informers(index, factory)
        self._sync_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.factory.start()
        self._sync_task = asyncio.create_task(
            mark_synced_when_listed(self.index, self.informers), name="dns-mark-synced"
        )

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            try:
                await self._sync_task
            except asyncio.CancelledError:
                pass
            self._sync_task = None
        await self.factory.stop()
