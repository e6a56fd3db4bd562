"""The garbage collector's decisions, as tables: owners' states -> keep, delete (and how),
drop refs; an owner deleted with Orphan or Foreground -> what it needs done."""
from __future__ import annotations

import pytest

from services.gc.decisions import Action, OwnerState, decide, owner_work

A, P, U = OwnerState.ABSENT, OwnerState.PRESENT, OwnerState.UNKNOWN
W = OwnerState.DELETING_DEPENDENTS
STAMP = "2024-01-01T00:00:00Z"


def obj(*uids: str, deleting: bool = False, finalizers: list[str] | None = None,
        block: bool = True, uid: str = "x") -> dict:
    meta: dict = {"name": uid, "uid": uid,
                  "ownerReferences": [{"kind": "Service", "name": u, "uid": u,
                                       "blockOwnerDeletion": block} for u in uids]}
    if deleting:
        meta["deletionTimestamp"] = STAMP
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta}


@pytest.mark.parametrize("o, states, has_dependents, action, drop, policy", [
    (obj(), {}, False, Action.KEEP, (), "Background"),
    (obj("a"), {"a": P}, False, Action.KEEP, (), "Background"),
    (obj("a"), {"a": A}, False, Action.DELETE, (), "Background"),
    (obj("a"), {"a": A}, True, Action.DELETE, (), "Background"),
    (obj("a"), {"a": U}, False, Action.KEEP, (), "Background"),
    (obj("a", "b"), {"a": A, "b": A}, False, Action.DELETE, (), "Background"),
    (obj("a", "b"), {"a": A, "b": P}, False, Action.DROP_REFS, ("a",), "Background"),
    (obj("a", "b"), {"a": U, "b": A}, False, Action.DROP_REFS, ("b",), "Background"),
    (obj("a", deleting=True), {"a": A}, False, Action.KEEP, (), "Background"),
    # an owner deleting its dependents no longer holds them
    (obj("a"), {"a": W}, False, Action.DELETE, (), "Background"),
    (obj("a"), {"a": W}, True, Action.DELETE, (), "Foreground"),
    (obj("a", "b"), {"a": W, "b": P}, True, Action.DROP_REFS, ("a",), "Background"),
    (obj("a", "b"), {"a": W, "b": A}, False, Action.DELETE, (), "Background"),
    # the object's own GC finalizer says how it goes, unless the wait must reach down
    (obj("a", finalizers=["orphan"]), {"a": A}, True, Action.DELETE, (), "Orphan"),
    (obj("a", finalizers=["foregroundDeletion"]), {"a": A}, False, Action.DELETE, (), "Foreground"),
    (obj("a", finalizers=["orphan"]), {"a": W}, True, Action.DELETE, (), "Foreground"),
], ids=["no-owners", "owner-present", "owner-absent", "owner-absent-with-dependents",
        "owner-kind-unknown", "all-absent", "one-of-two-absent", "unknown-kept-absent-dropped",
        "already-deleting", "owner-waiting", "owner-waiting-chain-goes-foreground",
        "waiting-ref-dropped-other-holds", "waiting-and-absent", "own-orphan-finalizer",
        "own-foreground-finalizer", "waiting-beats-own-orphan"])
def test_decide(o, states, has_dependents, action, drop, policy):
    d = decide(o, lambda ref: states[ref["uid"]], has_dependents=has_dependents)
    assert (d.action, d.drop) == (action, drop)
    if action is Action.DELETE:
        assert d.policy == policy


def owner(*finalizers: str, deleting: bool = True) -> dict:
    meta: dict = {"name": "o", "uid": "o", "finalizers": list(finalizers)}
    if deleting:
        meta["deletionTimestamp"] = STAMP
    return {"metadata": meta}


def names(objs) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.mark.parametrize("o, dependents, orphan, look_at, remove", [
    (owner("orphan"), [obj("o", uid="d1"), obj("o", uid="d2")], ["d1", "d2"], [], ("orphan",)),
    (owner("orphan"), [], [], [], ("orphan",)),
    (owner("foregroundDeletion"), [], [], [], ("foregroundDeletion",)),
    (owner("foregroundDeletion"), [obj("o", uid="d1"), obj("o", uid="d2", block=False)],
     [], ["d1", "d2"], ()),
    # only blocking dependents hold it, even those on their way out
    (owner("foregroundDeletion"), [obj("o", uid="d2", block=False)], [], ["d2"],
     ("foregroundDeletion",)),
    (owner("foregroundDeletion"), [obj("o", uid="d1", deleting=True)], [], [], ()),
    (owner("foregroundDeletion", "example.com/x"), [], [], [], ("foregroundDeletion",)),
    # both: orphaned first, so nothing is left to wait for
    (owner("orphan", "foregroundDeletion"), [obj("o", uid="d1")], ["d1"], [],
     ("orphan", "foregroundDeletion")),
    (owner("orphan", deleting=False), [obj("o", uid="d1")], [], [], ()),
], ids=["orphan", "orphan-no-dependents", "foreground-no-dependents", "foreground-waits",
        "foreground-non-blocking-only", "foreground-blocked-by-terminating",
        "foreground-other-finalizers-stay", "orphan-and-foreground", "not-deleted"])
def test_owner_work(o, dependents, orphan, look_at, remove):
    work = owner_work(o, dependents)
    assert (names(work.orphan), names(work.look_at), work.remove_finalizers) == \
        (orphan, look_at, remove)
