"""The garbage collector's decision, as a table: owners' states -> keep, delete, drop refs."""
from __future__ import annotations

import pytest

from services.gc.ownership import Action, OwnerState, decide

A, P, U = OwnerState.ABSENT, OwnerState.PRESENT, OwnerState.UNKNOWN


def obj(*uids: str, deleting: bool = False) -> dict:
    meta: dict = {"name": "x", "ownerReferences": [{"kind": "Service", "name": u, "uid": u}
                                                   for u in uids]}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize("o, states, action, remaining", [
    (obj(), {}, Action.KEEP, ()),
    (obj("a"), {"a": P}, Action.KEEP, ()),
    (obj("a"), {"a": A}, Action.DELETE, ()),
    (obj("a"), {"a": U}, Action.KEEP, ()),
    (obj("a", "b"), {"a": A, "b": A}, Action.DELETE, ()),
    (obj("a", "b"), {"a": A, "b": P}, Action.DROP_DANGLING, ("b",)),
    (obj("a", "b"), {"a": U, "b": A}, Action.DROP_DANGLING, ("a",)),
    (obj("a", deleting=True), {"a": A}, Action.KEEP, ()),
], ids=["no-owners", "owner-present", "owner-absent", "owner-kind-unknown", "all-absent",
        "one-of-two-absent", "unknown-kept-absent-dropped", "already-deleting"])
def test_decide(o, states, action, remaining):
    d = decide(o, lambda ref: states[ref["uid"]])
    assert d.action is action
    assert tuple(r["uid"] for r in d.remaining) == remaining
