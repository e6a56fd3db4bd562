"""The ControllerRevision writes of a sync (kube's constructHistory, snapshot,
dedupCurHistories, cleanupHistory): find or make the revision of the DaemonSet's template,
give it the newest number, drop duplicates and history beyond revisionHistoryLimit."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from services.daemonset import revisions as rev

log = logging.getLogger("daemonset")


class StaleCollisionCount(RuntimeError):
    """Another template has this template's name: the collision count went up, try again."""


async def _snapshot(client: ApiClient, ds: Obj, number: int) -> Obj:
    meta = ds["metadata"]
    collisions = (ds.get("status") or {}).get("collisionCount")
    hash_ = rev.template_hash((ds.get("spec") or {}).get("template") or {}, collisions)
    wanted = rev.new_revision(ds, hash_, number)
    try:
        return await client.create(R.CONTROLLERREVISIONS, wanted, meta.get("namespace"))
    except ApiError as exc:
        if exc.code != 409:
            raise
    existing = await client.get(R.CONTROLLERREVISIONS, wanted["metadata"]["name"], meta.get("namespace"))
    if rev.matches(ds, existing):
        return existing
    fresh = await client.get(R.DAEMONSETS, meta["name"], meta.get("namespace"))
    if (fresh.get("status") or {}).get("collisionCount") != collisions:
        raise StaleCollisionCount(f"stale collision count of DaemonSet {meta['name']}; retrying")
    fresh.setdefault("status", {})["collisionCount"] = (collisions or 0) + 1
    await client.update_status(R.DAEMONSETS, fresh)
    raise StaleCollisionCount(f"hash collision for DaemonSet {meta['name']}: collisionCount "
                              f"now {(collisions or 0) + 1}")


async def _dedup(client: ApiClient, ds: Obj, current: Sequence[Obj], pods: Sequence[Obj]) -> Obj:
    keep = rev.keep_of(current)
    if len(current) == 1:
        return keep
    keep_hash = rev.current_hash(keep)
    namespace = ds["metadata"].get("namespace")
    for pod in pods:
        if ((pod.get("metadata") or {}).get("labels") or {}).get(rev.HASH_LABEL) != keep_hash:
            await client.patch(R.PODS, pod["metadata"]["name"],
                               {"metadata": {"labels": {rev.HASH_LABEL: keep_hash}}}, namespace)
    for other in current:
        if other["metadata"]["name"] != keep["metadata"]["name"]:
            await _delete(client, other)
    return keep


async def _delete(client: ApiClient, revision: Obj) -> None:
    meta = revision["metadata"]
    try:
        await client.delete(R.CONTROLLERREVISIONS, meta["name"], meta.get("namespace"))
    except ApiError as exc:
        if exc.code != 404:
            raise


async def construct(client: ApiClient, ds: Obj, owned: Sequence[Obj], pods: Sequence[Obj]
                    ) -> tuple[Obj, list[Obj]]:
    """(the current revision, the old ones), writing what has to change."""
    current, old = rev.split_current(ds, owned)
    number = rev.next_number(old)
    if not current:
        return await _snapshot(client, ds, number), old
    cur = await _dedup(client, ds, current, pods)
    if rev.revision_number(cur) < number:
        meta = cur["metadata"]
        cur = await client.patch(R.CONTROLLERREVISIONS, meta["name"], {"revision": number},
                                 meta.get("namespace"))
    return cur, old


async def clean_up(client: ApiClient, ds: Obj, old: Sequence[Obj], pods: Sequence[Obj]) -> None:
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    live = {str(((p.get("metadata") or {}).get("labels") or {}).get(rev.HASH_LABEL))
            for p in pods}
    for revision in rev.history_to_delete(old, limit if isinstance(limit, int) else 10, live):
        log.info("deleting old revision %s", revision["metadata"]["name"],
                 extra={"key": f"{ds['metadata'].get('namespace')}/{ds['metadata']['name']}"})
        await _delete(client, revision)
