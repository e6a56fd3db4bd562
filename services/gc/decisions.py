"""What to do with an object, given the state of its owners and of its dependents. Pure.

As a dependent (kube's attemptToDeleteItem): each owner is PRESENT, ABSENT, UNKNOWN, or
DELETING_DEPENDENTS (there, but deleted with Foreground: it waits for its dependents to go,
so it no longer holds them). An owner is ABSENT only when the API server says so (404, or
an object of that name with another uid: deleted and recreated). An owner of a kind this
collector does not know stays UNKNOWN and counts as present: deleting on a guess is not
recoverable.

As an owner being deleted (kube's attemptToOrphan and processDeletingDependentsItem):
with Orphan its dependents lose their reference to it, then it loses the `orphan`
finalizer; with Foreground its dependents are deleted, and it loses `foregroundDeletion`
once none of those that block it (blockOwnerDeletion) is left.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kubecore.api import propagation as P
from kubecore.api.propagation import owner_refs
from kubecore.api.types import Obj

__all__ = ["Action", "Decision", "OwnerState", "OwnerWork", "decide", "owner_refs", "owner_work"]


class OwnerState(enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"
    DELETING_DEPENDENTS = "deleting-dependents"


class Action(enum.Enum):
    KEEP = "keep"
    DELETE = "delete"
    DROP_REFS = "drop-refs"


@dataclass(frozen=True)
class Decision:
    action: Action
    drop: tuple[str, ...] = ()      # DROP_REFS: uids of the references to remove
    policy: str = P.BACKGROUND      # DELETE: the propagation policy to delete with


def decide(obj: Obj, state_of: Callable[[Obj], OwnerState], *, has_dependents: bool) -> Decision:
    """Keep an object that still has an owner holding it, dropping the references to
    owners that are gone or deleting their dependents; delete one that has none. Deleted
    for an owner's Foreground deletion, an object with dependents of its own is deleted
    in the foreground too, so the wait reaches down the chain; otherwise the object's own
    GC finalizer, if it has one, says how. An object already being deleted is left to
    finish."""
    refs = owner_refs(obj)
    if not refs or P.being_deleted(obj):
        return Decision(Action.KEEP)
    states = [state_of(ref) for ref in refs]
    holding = [s for s in states if s in (OwnerState.PRESENT, OwnerState.UNKNOWN)]
    letting_go = [ref.get("uid", "") for ref, s in zip(refs, states, strict=False)
                  if s in (OwnerState.ABSENT, OwnerState.DELETING_DEPENDENTS)]
    if holding:
        return Decision(Action.DROP_REFS, tuple(letting_go)) if letting_go else Decision(Action.KEEP)
    if has_dependents and OwnerState.DELETING_DEPENDENTS in states:
        return Decision(Action.DELETE, policy=P.FOREGROUND)
    finalizers = P.finalizers(obj)
    if P.ORPHAN_FINALIZER in finalizers:
        return Decision(Action.DELETE, policy=P.ORPHAN)
    if P.FOREGROUND_FINALIZER in finalizers:
        return Decision(Action.DELETE, policy=P.FOREGROUND)
    return Decision(Action.DELETE, policy=P.BACKGROUND)


@dataclass(frozen=True)
class OwnerWork:
    """What an owner being deleted with Orphan or Foreground needs, in this order."""
    orphan: tuple[Obj, ...] = ()              # dependents whose reference to it goes
    look_at: tuple[Obj, ...] = ()             # dependents to collect (they may go now)
    remove_finalizers: tuple[str, ...] = ()   # then these finalizers go from the owner


def owner_work(owner: Obj, dependents: Sequence[Obj]) -> OwnerWork:
    """`dependents`: the objects known to reference `owner` (by uid)."""
    uid = (owner.get("metadata") or {}).get("uid", "")
    orphan: tuple[Obj, ...] = ()
    remove: list[str] = []
    if P.orphaning(owner):
        orphan = tuple(dependents)
        dependents = ()  # once orphaned, none of them holds it back
        remove.append(P.ORPHAN_FINALIZER)
    look_at: tuple[Obj, ...] = ()
    if P.deleting_dependents(owner):
        look_at = tuple(d for d in dependents if not P.being_deleted(d))
        if not any(P.blocks(d, uid) for d in dependents):  # being deleted still blocks
            remove.append(P.FOREGROUND_FINALIZER)
    return OwnerWork(orphan, look_at, tuple(remove))
