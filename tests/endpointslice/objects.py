"""Object builders for the EndpointSlice tests (planner tables and integration)."""
from __future__ import annotations

from typing import Any

from kubecore.api.types import Obj

SVC_UID = "svc-uid-1"


def service(name: str = "web", *, selector: dict[str, str] | None = None, uid: str = SVC_UID,
            ports: list[Obj] | None = None, namespace: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"selector": {"app": "web"} if selector is None else selector,
                     "ports": ports if ports is not None else
                     [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     **spec}}


def pod(name: str, ip: str | None = None, *, ready: bool = True, labels: dict[str, str] | None = None,
        namespace: str = "default", terminating: bool = False, phase: str = "Running",
        ports: list[Obj] | None = None, node: str | None = "node-1") -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                 "labels": {"app": "web"} if labels is None else labels}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: Obj = {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip is not None:
        status["podIP"] = ip
    spec: Obj = {"containers": [{"name": "c", "image": "img", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def pods(n: int, *, start: int = 0, **kw: Any) -> list[Obj]:
    return [pod(f"p{i:03d}", f"10.1.{i // 250}.{i % 250 + 1}", **kw) for i in range(start, start + n)]
