"""DaemonSets, nodes and pods as the API server would hold them, for the planner's tables."""
from __future__ import annotations

from typing import Any

from kubecore.api import defaults as d
from services.daemonset.revisions import HASH_LABEL

T0 = "2026-01-01T00:00:00Z"


def daemonset(*, surge: Any = 0, unavailable: Any = 1, on_delete: bool = False, min_ready: int = 0,
              **template_spec: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = ({"type": "OnDelete"} if on_delete else
                                {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1,
                     "annotations": {d.TEMPLATE_GENERATION: "1"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "updateStrategy": strategy,
                 "minReadySeconds": min_ready,
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                       **template_spec}}}}
    d.default_daemonset(obj)
    return obj


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, node_name: str, *, hash_: str = "new", ready: bool = True, phase: str = "Running",
        created: str = T0, deleting: bool = False, ready_since: str = T0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "creationTimestamp": created,
                            "labels": {"app": "agent", HASH_LABEL: hash_}}
    if deleting:
        meta["deletionTimestamp"] = T0
    return {"metadata": meta, "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": ready_since}]}}
