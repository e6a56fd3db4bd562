"""What to do with an object, given the state of each of its owners. Pure.

An owner is ABSENT only when the API server says so (404, or an object of that name with
another uid: the owner was deleted and recreated). An owner of a kind this collector does
not know stays UNKNOWN, and counts as present: deleting on a guess is not recoverable.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

Obj = dict[str, Any]


class OwnerState(enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


class Action(enum.Enum):
    KEEP = "keep"
    DELETE = "delete"
    DROP_DANGLING = "drop-dangling"


@dataclass(frozen=True)
class Decision:
    action: Action
    remaining: tuple[Obj, ...] = ()  # for DROP_DANGLING: the references that stay


def owner_refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def decide(obj: Obj, state_of: Callable[[Obj], OwnerState]) -> Decision:
    """Delete when every owner is absent; when only some are, drop the references to
    those (the object lives on with its other owners); otherwise keep it. An object
    already being deleted is left to finish."""
    refs = owner_refs(obj)
    if not refs or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Decision(Action.KEEP)
    states = [state_of(ref) for ref in refs]
    if all(s is OwnerState.ABSENT for s in states):
        return Decision(Action.DELETE)
    if any(s is OwnerState.ABSENT for s in states):
        return Decision(Action.DROP_DANGLING,
                        tuple(r for r, s in zip(refs, states) if s is not OwnerState.ABSENT))
    return Decision(Action.KEEP)
