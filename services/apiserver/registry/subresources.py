"""pods/binding and <workload>/scale: subresources with their own small storage, as
kube-apiserver's BindingREST and ScaleREST, written through the same strategy."""
from __future__ import annotations

import copy
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import Cause, conflict, invalid
from kubecore.api.selectors import Requirement, format_selector, selector_from_label_selector
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import ObjectStorage
from services.apiserver.registry.meta import now_rfc3339
from services.apiserver.registry.preconditions import check_resource_version
from services.apiserver.registry.strategy import apply_patch, prepare_update
from services.apiserver.registry.validation import body_resource_version

BOUND: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def binding_target(name: str, binding: Obj) -> str:
    """The node a Binding names (422 unless it names one)."""
    target = binding.get("target") or {}
    node = target.get("name")
    if not isinstance(node, str) or not node:
        raise invalid("Binding", name, [Cause("target.name", "Required value", "FieldValueRequired")])
    if target.get("kind", "Node") != "Node":
        raise invalid("Binding", name, [Cause("target.kind", "Invalid value: must be Node")])
    return node


def bind_pod(pod: Obj, name: str, node: str) -> Obj:
    """The pod assigned to `node`, PodScheduled (409 if deleted or already assigned)."""
    spec = pod.setdefault("spec", {})
    if pod["metadata"].get("deletionTimestamp"):
        raise conflict("pods", name, "the pod is being deleted")
    if spec.get("nodeName"):
        raise conflict("pods/binding", name, f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
    spec["nodeName"] = node
    status = pod.setdefault("status", {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": now_rfc3339()})
    status["conditions"] = conds
    return pod


async def bind(storage: ObjectStorage, rt: R.ResourceType, namespace: str | None, name: str,
               binding: Obj) -> Obj:
    """POST pods/<name>/binding; -> the Status to answer with."""
    node = binding_target(name, binding)

    async def mutate(current: Obj) -> Obj:
        return bind_pod(current, name, node)

    await storage.update(rt, namespace, name, mutate)
    return BOUND


def selector_string(selector: Any) -> str:
    """A LabelSelector as metav1.LabelSelectorAsSelector(...).String() writes it, which is
    what a Scale's status.selector holds (and what `kubectl scale` and autoscalers list
    pods by): requirements sorted by key, matchLabels as `k=v`, set values sorted."""
    if not isinstance(selector, dict):
        return ""
    reqs = selector_from_label_selector({"matchLabels": selector.get("matchLabels") or {},
                                         "matchExpressions": selector.get("matchExpressions") or []})
    ordered = sorted((Requirement(r.key, r.op, tuple(sorted(r.values)) if r.op in ("in", "notin")
                                  else r.values) for r in reqs), key=lambda r: r.key)
    return format_selector(ordered)


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale of anything with spec.replicas and a spec.selector (kube's
    ScaleREST of each workload): spec.replicas left out when 0 (omitempty there),
    status.replicas always written, status.selector when there is one."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    status: Obj = {"replicas": (obj.get("status") or {}).get("replicas", 0)}
    selector = selector_string(spec.get("selector"))
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": replicas} if replicas else {},
            "status": status}


async def get_scale(storage: ObjectStorage, rt: R.ResourceType, namespace: str | None, name: str) -> Obj:
    return scale_of(await storage.get(rt, namespace, name))


async def write_scale(storage: ObjectStorage, rt: R.ResourceType, namespace: str | None, name: str,
                      body: Any, *, patch_type: str | None) -> Obj:
    """PUT (`patch_type` None) or PATCH of the Scale; -> the Scale stored."""
    async def mutate(current: Obj) -> Obj:
        new_scale = apply_patch(rt, scale_of(current), body, patch_type) if patch_type is not None else body
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)  # omitted: 0, as Go decodes it
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: "
                                                f"{replicas}: must be greater than or equal to 0")],
                          "autoscaling")
        check_resource_version(rt, body_resource_version(new_scale) if patch_type is None else None,
                               current)
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        return prepare_update(rt, new, current, status_only=False)

    obj, _ = await storage.update(rt, namespace, name, mutate)
    return scale_of(obj)
