"""Which pods and ControllerRevisions a StatefulSet holds, as apimachinery's ControllerRefManager
decides (kube's getPodsForStatefulSet, adoptOrphanRevisions).

A set adopts what matches its selector and has no controller, keeps what it controls and
still matches, and releases what it controls that no longer matches; objects controlled by
another owner are never touched. For pods, matching also means being named for the set
(`<set>-<ordinal>`), so a pod of another set with the same labels is never taken. A set being
deleted adopts nothing. The controller turns the answer into the patches below, which are
conditional on the object's resourceVersion and uid. (The Deployment controller has the same
rules; services do not share code, so this is the StatefulSet's own copy.)
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubecore.api.selectors import Requirement, labels_match
from kubecore.api.types import Obj, nested
from services.statefulset.identity import owner_reference


def controller_ref(obj: Obj) -> Obj | None:
    for ref in nested(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


@dataclass
class Claim:
    owned: list[Obj] = field(default_factory=list)  # ours and matching: includes `adopt`
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, candidates: Iterable[Obj], selector: list[Requirement],
          member: Callable[[Obj], bool] = lambda obj: True) -> Claim:
    meta = owner["metadata"]
    deleting = bool(meta.get("deletionTimestamp"))
    result = Claim()
    for obj in candidates:
        labels = nested(obj, "metadata", "labels") or {}
        matches = bool(selector) and labels_match(selector, labels) and member(obj)
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != meta.get("uid"):
                continue
            if matches:
                result.owned.append(obj)
            elif not deleting:
                result.release.append(obj)
            continue
        if matches and not deleting and not nested(obj, "metadata", "deletionTimestamp"):
            result.adopt.append(obj)
            result.owned.append(obj)
    return result


def adoption_patch(owner: Obj, obj: Obj) -> Obj:
    """A merge patch adding `owner` as controller, conditional on the cached resourceVersion."""
    meta = obj["metadata"]
    refs = list(meta.get("ownerReferences") or [])
    refs.append(owner_reference(owner))
    patch: Obj = {"ownerReferences": refs, "uid": meta["uid"]}
    if meta.get("resourceVersion"):
        patch["resourceVersion"] = meta["resourceVersion"]
    return {"metadata": patch}


def release_patch(owner: Obj, obj: Obj) -> Obj:
    uid = owner["metadata"].get("uid")
    refs = [r for r in nested(obj, "metadata", "ownerReferences") or [] if r.get("uid") != uid]
    return {"metadata": {"ownerReferences": refs or None, "uid": obj["metadata"]["uid"]}}
