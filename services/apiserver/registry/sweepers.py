"""Background deletes the server makes itself, each a loop started and stopped with the app:

- pods whose node never confirmed their deletion go once the grace period has long passed
  (the node may be gone);
- Events go `event_ttl` after their last occurrence (kube-apiserver's --event-ttl, which etcd
  leases enforce there; a repeat that counts an Event up renews it).

Both read the watch cache and delete only what is still as they saw it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.printers import tables as T
from services.apiserver.registry.interfaces import CachedObjects, ObjectStorage
from services.apiserver.registry.meta import parse_rfc3339
from services.apiserver.registry.preconditions import unchanged_since

log = logging.getLogger("apiserver")


async def sweep_overdue_pods(storage: ObjectStorage, caches: Mapping[str, CachedObjects], *,
                             interval: float, force_delete_after: float) -> None:
    """Every `interval`: remove the pods marked for deletion whose deadline passed more than
    `force_delete_after` seconds ago."""
    while True:
        await asyncio.sleep(interval)
        cache = caches.get("pods")
        if cache is None:
            continue
        limit = datetime.now(UTC) - timedelta(seconds=force_delete_after)
        for obj, _ in list(cache.current(R.PODS.key_prefix())):
            await _remove_if_overdue(storage, obj, limit)


async def _remove_if_overdue(storage: ObjectStorage, obj: Obj, limit: datetime) -> None:
    meta = obj["metadata"]
    ts = meta.get("deletionTimestamp")
    if not ts or meta.get("finalizers"):  # finalizers hold a pod as any object
        return
    try:
        if parse_rfc3339(ts) > limit:
            return
        await storage.delete(R.PODS, meta["namespace"], meta["name"],
                             unchanged_since(meta["resourceVersion"]))
        log.info("pod %s/%s removed: grace period long passed", meta["namespace"], meta["name"])
    except (ApiError, ValueError):
        return


async def sweep_expired_events(storage: ObjectStorage, caches: Mapping[str, CachedObjects], *,
                               interval: float, ttl: float) -> None:
    """Every `interval`: remove the Events last seen more than `ttl` seconds ago."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_expired_events_once(storage, caches, ttl)
        except Exception:
            log.exception("sweeping expired events failed; trying again next time")


async def sweep_expired_events_once(storage: ObjectStorage, caches: Mapping[str, CachedObjects],
                                    ttl: float) -> None:
    cache = caches.get("events")
    if cache is None:
        return
    limit = datetime.now(UTC) - timedelta(seconds=ttl)
    expired = [obj for obj, _ in list(cache.current(R.EVENTS.key_prefix()))
               if event_expired(obj, limit)]
    removed = 0
    for obj in expired:
        meta = obj["metadata"]
        try:  # one counted up meanwhile is kept
            await storage.delete(R.EVENTS, meta["namespace"], meta["name"],
                                 unchanged_since(meta["resourceVersion"]))
            removed += 1
        except ApiError:
            continue
    if removed:
        log.info("%d expired event(s) removed", removed)


def event_expired(ev: Obj, limit: datetime) -> bool:
    """Whether the Event's latest time (its last occurrence, or its creation) is before
    `limit`."""
    # `series` is stored as the client sent it (the server does not model it): anything but
    # an object there is no time, not an error
    series = ev.get("series")
    times = [T.parse_time(t) for t in (
        ev.get("lastTimestamp"), ev.get("firstTimestamp"), ev.get("eventTime"),
        series.get("lastObservedTime") if isinstance(series, dict) else None,
        (ev.get("metadata") or {}).get("creationTimestamp"))]
    known = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None]
    return bool(known) and max(known) < limit
