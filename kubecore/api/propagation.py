"""Deletion propagation: the words the API server and the garbage collector share.

A DELETE names what becomes of the object's dependents (DeleteOptions.propagationPolicy,
or the deprecated `orphanDependents`):

- Background: the object goes at once; the garbage collector then deletes the dependents
  whose owners are all gone.
- Orphan: the API server marks the object (deletionTimestamp) and adds the `orphan`
  finalizer; the collector removes the object from its dependents' ownerReferences, then
  the finalizer, and the object goes. The dependents stay.
- Foreground: the API server marks the object and adds `foregroundDeletion`; the
  collector deletes the dependents and waits for those whose reference says
  `blockOwnerDeletion: true` to be gone before it removes the finalizer: the owner goes
  last.

Pure: names and predicates over plain objects.
"""
from __future__ import annotations

from kubecore.api.types import Obj

FOREGROUND = "Foreground"
BACKGROUND = "Background"
ORPHAN = "Orphan"
POLICIES = (FOREGROUND, BACKGROUND, ORPHAN)  # in the order kube-apiserver lists them

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
GC_FINALIZERS = (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def finalizers(obj: Obj) -> list[str]:
    return list(_meta(obj).get("finalizers") or [])


def owner_refs(obj: Obj) -> list[Obj]:
    return list(_meta(obj).get("ownerReferences") or [])


def being_deleted(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def orphaning(obj: Obj) -> bool:
    """Deleted with Orphan: its dependents are to be let go before it goes."""
    return being_deleted(obj) and ORPHAN_FINALIZER in finalizers(obj)


def deleting_dependents(obj: Obj) -> bool:
    """Deleted with Foreground: it waits for its blocking dependents to be gone."""
    return being_deleted(obj) and FOREGROUND_FINALIZER in finalizers(obj)


def references(dependent: Obj, owner_uid: str) -> list[Obj]:
    return [r for r in owner_refs(dependent) if r.get("uid") == owner_uid]


def blocks(dependent: Obj, owner_uid: str) -> bool:
    """Does `dependent` hold back the foreground deletion of the owner with this uid?"""
    return any(r.get("blockOwnerDeletion") is True for r in references(dependent, owner_uid))
