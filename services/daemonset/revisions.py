"""A DaemonSet's rollout history, as kube's DaemonSet controller keeps it (update.go).

Each pod template the DaemonSet has had is a ControllerRevision named `<ds>-<hash>`, owned by
the DaemonSet and labelled with the template's labels and `controller-revision-hash`. Its
`data` is the strategic merge patch that puts the template back (`{"spec": {"template":
{..., "$patch": "replace"}}}`, keys sorted as Go's encoder writes a map, the template's
metadata with its null creationTimestamp): kubectl's `rollout undo` applies it as is and its
`rollout history` shows it, and both compare it with the same patch of the live DaemonSet.

The current revision is the one whose data matches the DaemonSet; a revision that becomes
current again (an undo) takes the next number, so numbers always grow. Old revisions beyond
`revisionHistoryLimit` go, oldest first, unless a pod still runs their template.
"""
from __future__ import annotations

import copy
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubecore.api.types import Obj

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET, _FNV32_PRIME = 0x811C9DC5, 0x01000193


def _fnv32a(data: bytes) -> int:
    h = _FNV32_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def _safe_encode(text: str) -> str:
    """apimachinery's rand.SafeEncodeString: no vowels (no words), no 0/1/3 (no look-alikes)."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """kube's ComputeHash: FNV-32a of the template (here its canonical JSON) and the
    collision count, written in the safe alphabet."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF)
    return _safe_encode(str(_fnv32a(data)))


def _sorted(value: Any) -> Any:
    """Maps with their keys in order, at every level: how Go encodes a map[string]any."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def revision_data(ds: Obj) -> Obj:
    """kube's getPatch: the patch that replaces spec.template with this DaemonSet's."""
    template = copy.deepcopy(((ds.get("spec") or {}).get("template")) or {})
    metadata = template.get("metadata")
    template["metadata"] = dict(metadata) if isinstance(metadata, dict) else {}
    template["metadata"].setdefault("creationTimestamp", None)  # a Go struct, never omitted
    template["$patch"] = "replace"
    result: Obj = _sorted({"spec": {"template": template}})
    return result


def matches(ds: Obj, revision: Obj) -> bool:
    return revision.get("data") == revision_data(ds)


def revision_number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) else 0


def split_current(ds: Obj, revisions: Iterable[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(revisions matching the DaemonSet's template, the others)."""
    current: list[Obj] = []
    old: list[Obj] = []
    for rev in revisions:
        (current if matches(ds, rev) else old).append(rev)
    return current, old


def next_number(old: Sequence[Obj]) -> int:
    return max((revision_number(r) for r in old), default=0) + 1


def keep_of(current: Sequence[Obj]) -> Obj:
    """Of several revisions of the current template, the one with the highest number."""
    return max(current, key=revision_number)


def new_revision(ds: Obj, hash_: str, number: int) -> Obj:
    """The ControllerRevision of the DaemonSet's template (kube's snapshot)."""
    meta = ds["metadata"]
    template = (ds.get("spec") or {}).get("template") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = hash_
    rev_meta: Obj = {"name": f"{meta['name']}-{hash_}", "namespace": meta.get("namespace"),
                     "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]}
    if meta.get("annotations"):
        rev_meta["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": rev_meta,
            "data": revision_data(ds), "revision": number}


def current_hash(revision: Obj) -> str:
    """The hash pods of this revision carry: its label (its name's suffix when unlabelled)."""
    labels = (revision.get("metadata") or {}).get("labels") or {}
    return str(labels.get(HASH_LABEL) or (revision.get("metadata") or {}).get("name", ""))


def history_to_delete(old: Sequence[Obj], limit: int, live_hashes: set[str]) -> list[Obj]:
    """Old revisions beyond `limit`, lowest numbers first, skipping any a pod still runs."""
    excess = len(old) - max(0, limit)
    out: list[Obj] = []
    for rev in sorted(old, key=revision_number):
        if excess <= 0:
            break
        if current_hash(rev) in live_hashes:
            continue
        out.append(rev)
        excess -= 1
    return out
