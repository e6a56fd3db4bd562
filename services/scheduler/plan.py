"""Where a pod may run, decided from plain objects: no I/O, so tables can test it.

A node is a candidate when it is Ready, schedulable (or the pod tolerates the
`node.kubernetes.io/unschedulable` taint, as DaemonSet pods do), tolerated and matches the
pod's node selector and required node affinity (`matchFields` on `metadata.name` is how a
DaemonSet pod names its node). Among candidates the one with the fewest
pods wins; ties go to the first name, so the choice is reproducible. A node that is
not a candidate gets exactly one reason (the first filter it fails), and the reasons
are counted for the message the pod's PodScheduled condition carries, as kube-scheduler
words it ("0/2 nodes are available: 1 node(s) were not ready.").
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from kubecore.api.scheduling import term_matches, tolerates
from kubecore.api.types import Obj

DEFAULT_SCHEDULER = "default-scheduler"

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
NO_NODES = "no nodes available to schedule pods"

# Taints whose effect keeps new pods off a node (PreferNoSchedule only discourages).
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def pod_needs_scheduling(pod: Obj, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """Pending, unbound, not being deleted, and meant for this scheduler."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if spec.get("nodeName") or meta.get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return (spec.get("schedulerName") or DEFAULT_SCHEDULER) == scheduler_name


def node_is_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


# What a cordoned node would carry as a taint (kube's TaintNodesByCondition): a pod that
# tolerates it may go to an unschedulable node, as DaemonSet pods do (NodeUnschedulable plugin).
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def tolerates_unschedulable(pod: Obj) -> bool:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    return any(tolerates(t, UNSCHEDULABLE_TAINT) for t in tolerations)


def untolerated_taint(pod: Obj, node: Obj) -> Obj | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    taints: list[Obj] = (node.get("spec") or {}).get("taints") or []
    for taint in taints:
        if taint.get("effect") not in _BLOCKING_EFFECTS:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def matches_node_selector(pod: Obj, node: Obj) -> bool:
    """nodeSelector (every label equal) and requiredDuringScheduling node affinity (any term)."""
    spec = pod.get("spec") or {}
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if terms is not None:
        return any(term_matches(t, labels, meta.get("name", "")) for t in terms)
    return True


def misfit_reason(pod: Obj, node: Obj) -> str | None:
    """Why `pod` cannot go to `node` (the first filter it fails), or None when it can."""
    if not node_is_ready(node):
        return NOT_READY
    if (node.get("spec") or {}).get("unschedulable") and not tolerates_unschedulable(pod):
        return UNSCHEDULABLE
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"
    if not matches_node_selector(pod, node):
        return SELECTOR_MISMATCH
    return None


def choose_node(pod: Obj, nodes: Iterable[Obj], pod_counts: Mapping[str, int]
                ) -> tuple[Obj | None, dict[str, int]]:
    """The fitting node with the fewest pods (ties: smallest name), and for the nodes that
    do not fit, how many failed for each reason."""
    reasons: Counter[str] = Counter()
    best: Obj | None = None
    best_rank: tuple[int, str] | None = None
    for node in nodes:
        reason = misfit_reason(pod, node)
        if reason is not None:
            reasons[reason] += 1
            continue
        name = node["metadata"]["name"]
        rank = (pod_counts.get(name, 0), name)
        if best_rank is None or rank < best_rank:
            best, best_rank = node, rank
    return best, dict(reasons)


def unschedulable_message(total_nodes: int, reasons: Mapping[str, int]) -> str:
    """kube-scheduler's FitError wording: counts and reasons, sorted as text."""
    if total_nodes == 0:
        return NO_NODES
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."


def failure_worth_an_event(last: tuple[str, float] | None, message: str, now: float,
                           interval: float) -> bool:
    """FailedScheduling once per `interval` for one pod, or at once when the reason
    changed. Attempts come with every node heartbeat here (kube-scheduler backs off
    between them), so an event per attempt would be noise; `last` is (message, time) of
    the previous event."""
    return last is None or last[0] != message or now - last[1] >= interval


def unschedulable_condition(message: str, now: str) -> Obj:
    return {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": None, "lastTransitionTime": now}


def needs_condition_update(pod: Obj, message: str) -> bool:
    """False when the pod already says exactly this: our own echo, nothing to write."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return not (cond.get("status") == "False" and cond.get("reason") == "Unschedulable"
                        and cond.get("message") == message)
    return True


def assigned_node(pod: Obj) -> str | None:
    """The node a pod occupies: bound and not finished (finished pods hold no place)."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        return str(node)
    return None
