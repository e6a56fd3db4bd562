"""The one name for an API object as it travels: decoded JSON, a `dict` with string keys.

Objects stay plain dicts at run time (the API server stores what clients send, unknown
fields included). The TypedDicts below only tell the type checker what the common parts
hold where code reads them; they never build or check anything.
"""
from __future__ import annotations

from typing import Any, TypeAlias, TypedDict

Obj: TypeAlias = dict[str, Any]


class OwnerReference(TypedDict, total=False):
    """metav1.OwnerReference: who owns an object, for garbage collection."""
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    """metav1.ObjectMeta as this project reads it (every field optional, as on the wire)."""
    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    deletionGracePeriodSeconds: int
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    managedFields: list[Obj]


def nested(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a step is missing or not a map."""
    cur: Any = obj
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur
