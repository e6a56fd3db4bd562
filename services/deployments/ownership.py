"""Controller references and claiming, as apimachinery's ControllerRefManager does.

An owner claims the objects that match its selector and have no controller (adopt), keeps
the ones it controls that still match, and lets go of the ones it controls that no longer
match (release). Objects controlled by someone else are never touched. Pure: the
controllers turn the answer into patches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from kubecore.selectors import Requirement, labels_match

Obj = dict[str, Any]


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
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
    """A merge patch that adds `owner` as controller; the uid guards against a replaced object."""
    refs = list((obj.get("metadata") or {}).get("ownerReferences") or [])
    refs.append(owner_reference(owner))
    return {"metadata": {"ownerReferences": refs, "uid": obj["metadata"]["uid"]}}


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
