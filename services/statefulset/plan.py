"""One sync of a StatefulSet, decided from plain objects: kube's updateStatefulSet
(pkg/controller/statefulset/stateful_set_control.go) as a pure function.

Pods are slotted by ordinal: those in `[start, start + replicas)` are replicas, the others
with an ordinal are condemned. Then, in kube's order:

1. replicas, lowest ordinal first: a finished pod (Failed or Succeeded) is deleted, to be
   made again; a missing one is created at the revision its ordinal gets (below the
   partition the current one, else the update one); a pod whose identity labels are wrong
   is relabelled. With OrderedReady ("monotonic") the walk stops at the first pod it acts on
   or that is not yet Running, Ready and available; with Parallel it acts on all.
2. condemned pods, highest ordinal first, are deleted: with OrderedReady one at a time and
   only once every replica is Running and Ready (so a scale-down waits on the pods that
   stay), and each only once the pods above it are gone.
3. RollingUpdate (not OnDelete): the highest-ordinal pod at or above the partition that is
   not at the update revision is deleted (it comes back at the new revision on a later
   sync), one at a time and only while all those above are healthy.

The status counts the pods the API server has, as kube's updateStatus does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kubecore.api.types import Obj, nested
from services.statefulset import identity as ident

ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
ON_DELETE = "OnDelete"
ROLLING_UPDATE = "RollingUpdate"


@dataclass(frozen=True)
class Revisions:
    """The set's two revisions by name, and the template of each."""
    current: str
    update: str
    current_template: Obj
    update_template: Obj
    collision_count: int = 0


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)  # pods to create, in this order
    delete: list[tuple[Obj, str]] = field(default_factory=list)  # (pod, why): "failed", "scale down", "update"
    relabel: list[Obj] = field(default_factory=list)  # pods to give their identity labels
    status: Obj = field(default_factory=dict)


def is_monotonic(sts: Obj) -> bool:
    return bool(nested(sts, "spec", "podManagementPolicy") != PARALLEL)


def partition(sts: Obj) -> int:
    value = nested(sts, "spec", "updateStrategy", "rollingUpdate", "partition")
    return value if isinstance(value, int) and value > 0 else 0


def min_ready_seconds(sts: Obj) -> int:
    value = nested(sts, "spec", "minReadySeconds")
    return value if isinstance(value, int) and value > 0 else 0


def versioned_pod(sts: Obj, revs: Revisions, ordinal: int) -> Obj:
    """kube's newVersionedStatefulSetPod: below the partition a pod keeps the current revision
    (or, with RollingUpdate but no partition block, below the current pods' count)."""
    strategy = nested(sts, "spec", "updateStrategy") or {}
    start = ident.start_ordinal(sts)
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        keep_current = ordinal < start + partition(sts)
    else:
        current_count = int(nested(sts, "status", "currentReplicas") or 0)
        keep_current = strategy.get("type") == ROLLING_UPDATE and ordinal < start + current_count
    if keep_current:
        return ident.new_pod(sts, revs.current_template, ordinal, revs.current)
    return ident.new_pod(sts, revs.update_template, ordinal, revs.update)


def slot_pods(sts: Obj, pods: list[Obj], revs: Revisions) -> tuple[list[Obj], list[Obj]]:
    """(replicas by ordinal, made up where missing; condemned, highest ordinal first)."""
    start, count = ident.start_ordinal(sts), ident.replica_count(sts)
    slots: list[Obj | None] = [None] * count
    condemned = []
    for pod in pods:
        ordinal = ident.ordinal_of(pod)
        if start <= ordinal < start + count:
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    replicas = [pod if pod is not None else versioned_pod(sts, revs, start + i)
                for i, pod in enumerate(slots)]
    condemned.sort(key=ident.ordinal_of, reverse=True)
    return replicas, condemned


def compute_status(sts: Obj, revs: Revisions, pods: list[Obj], now: datetime) -> Obj:
    """kube's updateStatus over the pods the API server has (a pod not created counts nowhere)."""
    min_ready = min_ready_seconds(sts)
    created = [p for p in pods if ident.is_created(p)]
    live = [p for p in created if not ident.is_terminating(p)]
    return {
        "observedGeneration": nested(sts, "metadata", "generation") or 0,
        "replicas": len(created),
        "readyReplicas": sum(1 for p in pods if ident.is_running_and_ready(p)),
        "currentReplicas": sum(1 for p in live if ident.revision_of(p) == revs.current),
        "updatedReplicas": sum(1 for p in live if ident.revision_of(p) == revs.update),
        "availableReplicas": sum(1 for p in pods if ident.is_running_and_available(p, min_ready, now)),
        "currentRevision": revs.current,
        "updateRevision": revs.update,
        "collisionCount": revs.collision_count,
    }


def complete_rolling_update(sts: Obj, status: Obj) -> Obj:
    """kube's completeRollingUpdate: once every pod is updated and ready, the update
    revision becomes the current one."""
    if (nested(sts, "spec", "updateStrategy", "type") == ROLLING_UPDATE
            and status["updatedReplicas"] == status["replicas"]
            and status["readyReplicas"] == status["replicas"]):
        return {**status, "currentReplicas": status["updatedReplicas"],
                "currentRevision": status["updateRevision"]}
    return status


def _replica_step(sts: Obj, pod: Obj, plan: Plan, monotonic: bool, now: datetime) -> bool:
    """kube's processReplica for one replica; True: stop the walk (OrderedReady)."""
    if ident.is_finished(pod):
        if not ident.is_terminating(pod):
            plan.delete.append((pod, "failed"))
        return True
    if not ident.is_created(pod):
        plan.create.append(pod)
        return monotonic
    if monotonic and (ident.is_terminating(pod) or not ident.is_running_and_ready(pod)
                      or not ident.is_running_and_available(pod, min_ready_seconds(sts), now)):
        return True
    if not ident.identity_matches(sts, pod):
        plan.relabel.append(pod)
    return False


def _condemned_step(sts: Obj, pod: Obj, first_unhealthy: Obj | None, plan: Plan,
                    monotonic: bool, now: datetime) -> bool:
    """kube's processCondemned for one pod; True: stop (OrderedReady)."""
    if ident.is_terminating(pod):
        return monotonic
    if monotonic and pod is not first_unhealthy and (
            not ident.is_running_and_ready(pod)
            or not ident.is_running_and_available(pod, min_ready_seconds(sts), now)):
        return True
    plan.delete.append((pod, "scale down"))
    return True


def _rolling_update_step(sts: Obj, replicas: list[Obj], revs: Revisions, plan: Plan) -> None:
    """The highest pod at or above the partition not at the update revision goes, once all
    above it are healthy."""
    for target in range(len(replicas) - 1, partition(sts) - 1, -1):
        pod = replicas[target]
        if ident.revision_of(pod) != revs.update and not ident.is_terminating(pod):
            plan.delete.append((pod, "update"))
            plan.status["currentReplicas"] -= 1
            return
        if not ident.is_healthy(pod):
            return


def plan_sync(sts: Obj, pods: list[Obj], revs: Revisions, now: datetime) -> Plan:
    """What one sync does for `sts`, given the pods it owns."""
    replicas, condemned = slot_pods(sts, pods, revs)
    plan = Plan(status=compute_status(sts, revs, replicas + condemned, now))
    unhealthy = [p for p in replicas + condemned[::-1] if not ident.is_healthy(p)]
    first_unhealthy = unhealthy[0] if unhealthy else None
    if nested(sts, "metadata", "deletionTimestamp"):
        plan.status = complete_rolling_update(sts, plan.status)
        return plan
    monotonic = is_monotonic(sts)
    stopped = False
    for pod in replicas:
        if _replica_step(sts, pod, plan, monotonic, now) and monotonic:
            stopped = True
            break
    if not stopped:
        for pod in condemned:
            if _condemned_step(sts, pod, first_unhealthy, plan, monotonic, now) and monotonic:
                stopped = True
                break
    if not stopped and nested(sts, "spec", "updateStrategy", "type") != ON_DELETE:
        _rolling_update_step(sts, replicas, revs, plan)
    plan.status = complete_rolling_update(sts, plan.status)
    return plan
