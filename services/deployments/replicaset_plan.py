"""What a ReplicaSet needs, decided from plain objects.

- Which pods count: active ones (not finished, not being deleted). A pod on its way out
  is already gone as far as the replica count goes, so its replacement starts at once.
- How many to create or delete (`replica_diff`), in bursts that start small
  (`slow_start_batches`), so a broken template fails once, not five hundred times.
- Which pods to delete first (`deletion_order`): the least useful. Unscheduled before
  scheduled, pending before running, not ready before ready, ready for a short time before
  ready for long, more restarts first, newer before older.
- Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from kubecore.api.selectors import labels_match, selector_from_match_labels
from kubecore.api.types import Obj

# At most this many creations or deletions in one sync (kube's burstReplicas).
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.replace(".000000", ""), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC)
    except ValueError:
        return None


def is_pod_active(pod: Obj) -> bool:
    return (not (pod.get("metadata") or {}).get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def ready_condition(pod: Obj) -> Obj | None:
    conditions: list[Obj] = (pod.get("status") or {}).get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and for at least `min_ready_seconds` (by the Ready condition's transition)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: datetime) -> float | None:
    """For a ready pod not yet available: how long until it is (so the RS can look again)."""
    if min_ready_seconds <= 0 or not is_pod_ready(pod):
        return None
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    if since is None:
        return None
    left = min_ready_seconds - (now - since).total_seconds()
    return left if left > 0 else None


def replica_diff(wanted: int, active_pods: int) -> int:
    """> 0: pods to create; < 0: pods to delete. Capped at BURST_REPLICAS either way."""
    diff = wanted - active_pods
    return max(-BURST_REPLICAS, min(BURST_REPLICAS, diff))


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """1, 2, 4, ... summing to `count`: each batch runs only if the one before all succeeded."""
    batches, size, left = [], max(1, initial), count
    while left > 0:
        batch = min(size, left)
        batches.append(batch)
        left -= batch
        size *= 2
    return batches


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready = is_pod_ready(pod)
    ready_since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime")) if ready else None
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or _EPOCH
    return (
        bool(spec.get("nodeName")),
        _PHASE_RANK.get(status.get("phase") or "Pending", 0),
        ready,
        # Ready for a shorter time first: later transition sorts first.
        -(ready_since or _EPOCH).timestamp(),
        -restarts,
        -created.timestamp(),  # newer first
        (pod.get("metadata") or {}).get("name", ""),
    )


def deletion_order(pods: Iterable[Obj]) -> list[Obj]:
    """Pods from least to most useful: delete from the front."""
    return sorted(pods, key=_deletion_rank)


def pods_to_delete(pods: Sequence[Obj], count: int) -> list[Obj]:
    return deletion_order(pods)[:max(0, count)]


def new_pod(rs: Obj) -> Obj:
    """A pod from the RS's template, owned by the RS; the server finishes the name."""
    template = rs["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    meta = rs["metadata"]
    prefix = f"{meta['name']}-"
    if len(prefix) > 58:  # generateName + 5 random characters must stay a valid name
        prefix = prefix[:58]
    pod_meta: Obj = {"generateName": prefix, "namespace": meta.get("namespace"),
                     "labels": dict(tmeta.get("labels") or {}),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": dict(template.get("spec") or {})}


def replicaset_status(rs: Obj, active_pods: Sequence[Obj], now: datetime) -> Obj:
    """The RS status its pods make, keeping what the controller does not compute."""
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    template_selector = selector_from_match_labels(template_labels)
    status = dict(rs.get("status") or {})
    status.update({
        "replicas": len(active_pods),
        "fullyLabeledReplicas": sum(
            1 for p in active_pods
            if labels_match(template_selector, (p.get("metadata") or {}).get("labels") or {})),
        "readyReplicas": sum(1 for p in active_pods if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in active_pods if is_pod_available(p, min_ready, now)),
        "observedGeneration": (rs.get("metadata") or {}).get("generation", 0),
    })
    return status
