"""A StatefulSet's ControllerRevisions: its rollout history (kube's controller/history and
stateful_set_utils.go newRevision, ApplyRevision, getStatefulSetRevisions, truncateHistory).

A revision's `data` is kube's patch of the pod template, `{"spec": {"template": {...,
"$patch": "replace"}}}`, so `kubectl rollout undo` applies it as a strategic merge patch and
the template comes back whole. Its name is `<set>-<hash>`, the hash kube's HashControllerRevision
(FNV-32 of the data, plus the collision count, written with kube's safe alphabet); the data is
hashed as compact JSON with sorted keys (kube hashes Go's encoding, whose field order differs,
so the names are kube's in form, not the same strings). Pods carry the revision's name in their
`controller-revision-hash` label, and the revision its hash in `controller.kubernetes.io/hash`.
Pure: the controller makes the API calls these decide.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from kubecore.api.types import Obj, nested
from services.statefulset.identity import owner_reference

HASH_LABEL = "controller.kubernetes.io/hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.SafeEncodeString alphabet
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_NAME_PREFIX_MAX = 223


def fnv32(data: bytes) -> int:
    """Go's hash/fnv New32 (FNV-1, not 1a)."""
    h = _FNV32_OFFSET
    for byte in data:
        h = (h * _FNV32_PRIME) & 0xFFFFFFFF
        h ^= byte
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in text)


def revision_data(sts: Obj) -> Obj:
    """kube's getPatch: the template alone, marked to replace the whole template, its keys
    sorted and its metadata's `creationTimestamp: null` (Go's encoding of the typed template
    has it), so the bytes are those kubectl computes for `rollout undo`'s "already matches"."""
    template = copy.deepcopy(nested(sts, "spec", "template") or {})
    meta = template.get("metadata")
    template["metadata"] = meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault("creationTimestamp", None)
    template["$patch"] = "replace"
    data: Obj = _sorted_keys({"spec": {"template": template}})
    return data


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def hash_revision(data: Obj, collision_count: int | None) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def new_revision(sts: Obj, number: int, collision_count: int) -> Obj:
    """kube's newRevision: labelled like the template plus the hash, owned by the set, with
    the set's annotations (kubectl's change-cause reaches `rollout history` this way)."""
    meta = sts["metadata"]
    data = revision_data(sts)
    digest = hash_revision(data, collision_count)
    labels = dict(nested(sts, "spec", "template", "metadata", "labels") or {})
    labels[HASH_LABEL] = digest
    rev_meta: Obj = {"name": f"{meta['name'][:_NAME_PREFIX_MAX]}-{digest}",
                     "namespace": meta.get("namespace"), "labels": labels,
                     "ownerReferences": [owner_reference(sts)]}
    if meta.get("annotations"):
        rev_meta["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": rev_meta,
            "data": data, "revision": number}


def template_of(revision: Obj) -> Obj:
    """kube's ApplyRevision, for the only field a revision holds: the pod template."""
    template = copy.deepcopy(nested(revision, "data", "spec", "template") or {})
    template.pop("$patch", None)
    if isinstance(template.get("metadata"), dict) and template["metadata"].get("creationTimestamp") is None:
        template["metadata"].pop("creationTimestamp", None)
    return template


def _hash_number(revision: Obj) -> int | None:
    value = (nested(revision, "metadata", "labels") or {}).get(HASH_LABEL)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def equal_revision(a: Obj, b: Obj) -> bool:
    """kube's EqualRevision: hash labels that both parse as numbers must agree; the data must."""
    ha, hb = _hash_number(a), _hash_number(b)
    if ha is not None and hb is not None and ha != hb:
        return False
    return bool(a.get("data") == b.get("data"))


def sorted_revisions(revisions: list[Obj]) -> list[Obj]:
    """By revision number, then age, then name (history.SortControllerRevisions)."""
    return sorted(revisions, key=lambda r: (int(r.get("revision") or 0),
                                            nested(r, "metadata", "creationTimestamp") or "",
                                            nested(r, "metadata", "name") or ""))


def next_revision_number(revisions: list[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0) + 1


@dataclass(frozen=True)
class RevisionChoice:
    """What the set's revisions are, and the one write that makes them so:
    `create` the candidate (its name may collide), or `renumber` an older equal revision to
    the next number (a rollback), or nothing."""
    update: Obj
    current: Obj | None  # None: the update revision (first sync, or current one gone)
    create: bool = False
    renumber_to: int | None = None


def choose_revisions(sts: Obj, revisions: list[Obj]) -> RevisionChoice:
    """kube's getStatefulSetRevisions: the update revision is the template's, the current one
    the revision `status.currentRevision` names."""
    ordered = sorted_revisions(revisions)
    collisions = int(nested(sts, "status", "collisionCount") or 0)
    candidate = new_revision(sts, next_revision_number(ordered), collisions)
    equal = [r for r in ordered if equal_revision(r, candidate)]
    current_name = nested(sts, "status", "currentRevision")
    current = next((r for r in ordered if r["metadata"]["name"] == current_name), None)
    if equal and equal[-1] is ordered[-1]:
        return RevisionChoice(update=ordered[-1], current=current)
    if equal:
        return RevisionChoice(update=equal[-1], current=current, renumber_to=candidate["revision"])
    return RevisionChoice(update=candidate, current=current, create=True)


def history_to_delete(revisions: list[Obj], live: set[str], limit: int) -> list[Obj]:
    """kube's truncateHistory: revisions no pod and neither status revision uses, oldest
    first, beyond `limit`."""
    history = [r for r in sorted_revisions(revisions) if r["metadata"]["name"] not in live]
    excess = len(history) - max(0, limit)
    return history[:excess] if excess > 0 else []
