"""Which pods and ControllerRevisions a DaemonSet controls, as apimachinery's
ControllerRefManager decides: it keeps what it controls and its selector still matches,
adopts matching orphans (not while it is being deleted) and releases what no longer matches.
Objects another controller owns are never touched. Pure: the controller makes the patches.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubecore.api.selectors import Requirement, labels_match
from kubecore.api.types import Obj


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


@dataclass
class Claim:
    owned: list[Obj] = field(default_factory=list)  # ours and matching, adoptions included
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, candidates: Iterable[Obj], selector: list[Requirement]) -> Claim:
    meta = owner.get("metadata") or {}
    deleting = bool(meta.get("deletionTimestamp"))
    out = Claim()
    for obj in candidates:
        obj_meta = obj.get("metadata") or {}
        matches = bool(selector) and labels_match(selector, obj_meta.get("labels") or {})
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != meta.get("uid"):
                continue
            if matches:
                out.owned.append(obj)
            elif not deleting:
                out.release.append(obj)
        elif matches and not deleting and not obj_meta.get("deletionTimestamp"):
            out.adopt.append(obj)
            out.owned.append(obj)
    return out


def adoption_patch(owner: Obj, obj: Obj) -> Obj:
    """Adds the owner as controller; conditional on the object's version and uid, so a stale
    copy is refused (409) and claimed again on the next sync."""
    meta, owner_meta = obj["metadata"], owner["metadata"]
    refs = list(meta.get("ownerReferences") or [])
    refs.append({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner_meta["name"],
                 "uid": owner_meta["uid"], "controller": True, "blockOwnerDeletion": True})
    patch: Obj = {"ownerReferences": refs, "uid": meta["uid"]}
    if meta.get("resourceVersion"):
        patch["resourceVersion"] = meta["resourceVersion"]
    return {"metadata": patch}


def release_patch(owner: Obj, obj: Obj) -> Obj:
    uid = owner["metadata"].get("uid")
    refs = [r for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            if r.get("uid") != uid]
    return {"metadata": {"ownerReferences": refs or None, "uid": obj["metadata"]["uid"]}}
