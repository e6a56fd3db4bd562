"""Which nodes a DaemonSet's pod belongs on, and the pod each gets (kube's
NodeShouldRunDaemonPod, AddOrUpdateDaemonPodTolerations, ReplaceDaemonSetPodNodeNameNodeAffinity).

A node *should run* the pod when the template's node name (if any) is the node, the node
matches the template's node selector and required node affinity, and every NoSchedule or
NoExecute taint is tolerated. A pod already there *should continue* unless the node no longer
matches or has a NoExecute taint the pod does not tolerate. Every daemon pod tolerates the
node conditions (not-ready, unreachable, pressure) and cordoning, so a cordoned node still
gets its pod. Pods are not bound here: each is created with a required node affinity naming
its node, and the scheduler binds it there.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from kubecore.api.scheduling import NAME_FIELD, term_matches, tolerates
from kubecore.api.types import Obj

# The tolerations every daemon pod gets: node problems never evict or keep it out.
_NO_EXECUTE = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NO_SCHEDULE = ("node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable")
_HOST_NETWORK_NO_SCHEDULE = "node.kubernetes.io/network-unavailable"


def daemon_tolerations(host_network: bool) -> list[Obj]:
    out = [{"key": k, "operator": "Exists", "effect": "NoExecute"} for k in _NO_EXECUTE]
    out += [{"key": k, "operator": "Exists", "effect": "NoSchedule"} for k in _NO_SCHEDULE]
    if host_network:
        out.append({"key": _HOST_NETWORK_NO_SCHEDULE, "operator": "Exists", "effect": "NoSchedule"})
    return out


def _same_toleration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """kube's Toleration.MatchToleration: key, operator, value and effect."""
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "operator", "value", "effect"))


def with_daemon_tolerations(tolerations: Sequence[Obj], host_network: bool) -> list[Obj]:
    """AddOrUpdateTolerationInPodSpec for each daemon toleration: one that matches an existing
    toleration replaces it in place (dropping e.g. its tolerationSeconds), the others append."""
    out = [copy.deepcopy(dict(t)) for t in tolerations]
    for wanted in daemon_tolerations(host_network):
        at = next((i for i, t in enumerate(out) if _same_toleration(t, wanted)), None)
        if at is None:
            out.append(wanted)
        else:
            out[at] = wanted
    return out


def _untolerated(taints: Sequence[Obj], tolerations: Sequence[Obj], effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(tolerates(tol, t) for tol in tolerations)
               for t in taints)


def matches_node(pod_spec: Mapping[str, Any], node: Obj) -> bool:
    """The node selector (every label) and any required node affinity term."""
    meta = node.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    terms = required.get("nodeSelectorTerms") or []
    return any(term_matches(t, labels, str(meta.get("name", ""))) for t in terms)


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """(should run: a pod belongs here if none is; should continue: one here may stay)."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    name = (node.get("metadata") or {}).get("name")
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not matches_node(spec, node):
        return False, False
    tolerations = with_daemon_tolerations(spec.get("tolerations") or [], bool(spec.get("hostNetwork")))
    taints: list[Obj] = (node.get("spec") or {}).get("taints") or []
    if _untolerated(taints, tolerations, ("NoSchedule", "NoExecute")):
        return False, not _untolerated(taints, tolerations, ("NoExecute",))
    return True, True


def node_affinity_for(affinity: Obj | None, node_name: str) -> Obj:
    """The pod's affinity with its required node affinity replaced by one naming the node
    (`metadata.name In [node]`); preferred terms and pod (anti-)affinity stay."""
    out = copy.deepcopy(affinity) if affinity else {}
    node_affinity = out.setdefault("nodeAffinity", {}) or {}
    out["nodeAffinity"] = node_affinity
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node_name]}]}]}
    return out


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName once bound, before that the single
    `metadata.name In [...]` of its required node affinity (kube's GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == NAME_FIELD and req.get("operator") == "In":
                values = req.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None
