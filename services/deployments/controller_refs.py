"""Controller references and claiming, as apimachinery's ControllerRefManager does.

An owner claims the objects that match its selector and have no controller (adopt), keeps
the ones it controls that still match, and lets go of the ones it controls that no longer
match (release). Objects controlled by someone else are never touched. Pure but for
`refuse_stale_adoption` (a fresh read of the owner before adopting): the controllers turn
the answer into patches.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.selectors import Requirement, labels_match
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.store import object_key


def controller_ref(obj: Obj) -> Obj | None:
    refs: list[Obj] = (obj.get("metadata") or {}).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Obj) -> Obj:
    """The reference a controller writes into what it creates (and adopts)."""
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
            "name": meta["name"], "uid": meta["uid"], "controller": True,
            "blockOwnerDeletion": True}


@dataclass
class Claim:
    owned: list[Obj] = field(default_factory=list)  # ours and matching: includes `adopt`
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, candidates: Iterable[Obj], selector: list[Requirement]) -> Claim:
    """Split `candidates` (same namespace as `owner`) by what `owner` should do with them.
    An owner being deleted adopts nothing (kube: it would only orphan them again)."""
    meta = owner["metadata"]
    uid = meta.get("uid")
    deleting = bool(meta.get("deletionTimestamp"))
    result = Claim()
    for obj in candidates:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        matches = bool(selector) and labels_match(selector, labels)
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                result.owned.append(obj)
            elif not deleting:
                result.release.append(obj)
            continue
        if matches and not deleting and not (obj.get("metadata") or {}).get("deletionTimestamp"):
            result.adopt.append(obj)
            result.owned.append(obj)
    return result


def adoption_patch(owner: Obj, obj: Obj) -> Obj:
    """A merge patch that adds `owner` as controller. It replaces the whole list of references
    as the cache saw it, so the object's resourceVersion makes it conditional (a stale copy
    gets a 409 and is claimed again from the next sync); the uid guards against a replaced
    object."""
    meta = obj["metadata"]
    refs = list(meta.get("ownerReferences") or [])
    refs.append(owner_reference(owner))
    patch = {"ownerReferences": refs, "uid": meta["uid"]}
    if meta.get("resourceVersion"):
        patch["resourceVersion"] = meta["resourceVersion"]
    return {"metadata": patch}


async def refuse_stale_adoption(client: ApiClient, rt: ResourceType, owner: Obj,
                                claim: Claim) -> set[str]:
    """apimachinery's canAdopt, before the first adoption: the owner as the API server has
    it now (not as the cache does) must be the same object and not being deleted. A cache
    that lags behind an Orphan deletion would otherwise take back what the garbage collector
    just let go, and the collector would then delete it with the owner. If it cannot adopt,
    `claim.adopt` is emptied; returns the keys of the objects it gave up."""
    if not claim.adopt:
        return set()
    meta = owner["metadata"]
    try:
        fresh = (await client.get(rt, meta["name"], meta.get("namespace")))["metadata"]
    except ApiError as exc:
        if exc.code != 404:
            raise
        fresh = None
    if fresh is not None and fresh.get("uid") == meta.get("uid") and not fresh.get("deletionTimestamp"):
        return set()
    refused = {object_key(obj) for obj in claim.adopt}
    claim.adopt = []
    return refused


def release_patch(owner: Obj, obj: Obj) -> Obj:
    uid = owner["metadata"].get("uid")
    refs = [r for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            if r.get("uid") != uid]
    return {"metadata": {"ownerReferences": refs or None, "uid": obj["metadata"]["uid"]}}


# Store indexes shared by both controllers (one function object each: a store refuses two
# different functions under one name).
NAMESPACE_INDEX = "namespace"
CONTROLLER_INDEX = "controller-uid"


def by_namespace(obj: Obj) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def by_controller_uid(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []
