"""Tables like kubectl's: columns per resource, rows from objects, tab-aligned text.

Pure: every function takes the objects and the current time and returns strings, so the
columns are tested without a server. The cells follow kubectl's printers
(pkg/printers/internalversion) for the kinds this project serves.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from kubecore.resources import ResourceType
from minikubectl.ages import age

Obj = dict[str, Any]
Cell = Callable[[Obj, datetime], str]
NONE = "<none>"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _age(obj: Obj, now: datetime) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"), now)


def _list_with_more(items: list[str], total: int, limit: int = 3) -> str:
    text = ",".join(items[:limit])
    return f"{text} + {total - limit} more..." if total > limit else text


def _selector_text(selector: dict[str, str] | None) -> str:
    if not selector:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _label_selector_text(selector: Obj | None) -> str:
    """A LabelSelector as kubectl prints it: `app=web,tier in (a,b)`."""
    if not selector:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or NONE


def _containers_and_images(spec: Obj | None) -> tuple[str, str]:
    containers = (spec or {}).get("containers") or []
    return (",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers))


# --- services --------------------------------------------------------------------

def service_ports(svc: Obj) -> str:
    ports = _get(svc, "spec", "ports") or []
    if not ports:
        return NONE
    out = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out)


def service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if stype == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") or ""
                   for i in _get(svc, "status", "loadBalancer", "ingress") or []]
        addresses = [a for a in ingress + external if a]
        return ",".join(addresses) if addresses else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or NONE)
    return ",".join(external) if external else NONE


# --- pods --------------------------------------------------------------------------

def pod_ready(pod: Obj) -> str:
    total = len(_get(pod, "spec", "containers") or [])
    ready = sum(1 for cs in _get(pod, "status", "containerStatuses") or []
                if cs.get("ready") and "running" in (cs.get("state") or {}))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj) -> str:
    return str(sum(int(cs.get("restartCount") or 0)
                   for cs in _get(pod, "status", "containerStatuses") or []))


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def pod_status(pod: Obj) -> str:
    """kubectl's STATUS: the phase, refined by container states and deletion."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        initializing = True
        if term:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(_get(pod, 'spec', 'initContainers') or [])}"
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term:
                reason = _terminated_reason(term)
            elif "running" in state and cs.get("ready"):
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
            reason = "Running" if ready else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


# --- nodes ---------------------------------------------------------------------------

def node_status(node: Obj) -> str:
    ready = next((c for c in _get(node, "status", "conditions") or [] if c.get("type") == "Ready"),
                 None)
    if ready is None:
        text = "Unknown"
    else:
        text = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
    if _get(node, "spec", "unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key.split("/", 1)[1]:
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) if roles else NONE


def _node_address(node: Obj, kind: str) -> str:
    for a in _get(node, "status", "addresses") or []:
        if a.get("type") == kind and a.get("address"):
            return str(a["address"])
    return NONE


def _node_info(node: Obj, key: str) -> str:
    return str(_get(node, "status", "nodeInfo", key) or "<unknown>")


# --- endpoint slices -----------------------------------------------------------------------

def slice_ports(eps: Obj) -> str:
    ports = eps.get("ports") or []
    if not ports:
        return "<unset>"
    names = [str(p["port"]) if p.get("port") is not None else (p.get("name") or "*") for p in ports]
    return _list_with_more(names, len(names))


def slice_endpoints(eps: Obj) -> str:
    addresses = [a for ep in eps.get("endpoints") or [] for a in ep.get("addresses") or []]
    if not addresses:
        return NONE
    return _list_with_more(addresses, len(addresses))


# --- the column table ------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    wide_only: bool = False


def _text(*path: str, default: str = "") -> Cell:
    def cell(obj: Obj, now: datetime) -> str:
        value = _get(obj, *path)
        return default if value is None or value == "" else str(value)
    return cell


def _int(*path: str) -> Cell:
    def cell(obj: Obj, now: datetime) -> str:
        return str(_get(obj, *path) or 0)
    return cell


def _workload_wide() -> list[Column]:
    return [
        Column("CONTAINERS", lambda o, now: _containers_and_images(_get(o, "spec", "template", "spec"))[0], True),
        Column("IMAGES", lambda o, now: _containers_and_images(_get(o, "spec", "template", "spec"))[1], True),
        Column("SELECTOR", lambda o, now: _label_selector_text(_get(o, "spec", "selector")), True),
    ]


AGE = Column("AGE", _age)

COLUMNS: dict[str, list[Column]] = {
    "services": [
        Column("TYPE", _text("spec", "type", default="ClusterIP")),
        Column("CLUSTER-IP", _text("spec", "clusterIP", default=NONE)),
        Column("EXTERNAL-IP", lambda o, now: service_external_ip(o)),
        Column("PORT(S)", lambda o, now: service_ports(o)),
        AGE,
        Column("SELECTOR", lambda o, now: _selector_text(_get(o, "spec", "selector")), True),
    ],
    "pods": [
        Column("READY", lambda o, now: pod_ready(o)),
        Column("STATUS", lambda o, now: pod_status(o)),
        Column("RESTARTS", lambda o, now: pod_restarts(o)),
        AGE,
        Column("IP", _text("status", "podIP", default=NONE), True),
        Column("NODE", _text("spec", "nodeName", default=NONE), True),
        Column("NOMINATED NODE", _text("status", "nominatedNodeName", default=NONE), True),
        Column("READINESS GATES", lambda o, now: NONE if not _get(o, "spec", "readinessGates")
               else f"0/{len(_get(o, 'spec', 'readinessGates'))}", True),
    ],
    "nodes": [
        Column("STATUS", lambda o, now: node_status(o)),
        Column("ROLES", lambda o, now: node_roles(o)),
        AGE,
        Column("VERSION", _text("status", "nodeInfo", "kubeletVersion")),
        Column("INTERNAL-IP", lambda o, now: _node_address(o, "InternalIP"), True),
        Column("EXTERNAL-IP", lambda o, now: _node_address(o, "ExternalIP"), True),
        Column("OS-IMAGE", lambda o, now: _node_info(o, "osImage"), True),
        Column("KERNEL-VERSION", lambda o, now: _node_info(o, "kernelVersion"), True),
        Column("CONTAINER-RUNTIME", lambda o, now: _node_info(o, "containerRuntimeVersion"), True),
    ],
    "deployments": [
        Column("READY", lambda o, now: f"{_get(o, 'status', 'readyReplicas') or 0}/"
                                       f"{_get(o, 'spec', 'replicas') if _get(o, 'spec', 'replicas') is not None else 1}"),
        Column("UP-TO-DATE", _int("status", "updatedReplicas")),
        Column("AVAILABLE", _int("status", "availableReplicas")),
        AGE,
        *_workload_wide(),
    ],
    "replicasets": [
        Column("DESIRED", lambda o, now: str(_get(o, "spec", "replicas")
                                             if _get(o, "spec", "replicas") is not None else 1)),
        Column("CURRENT", _int("status", "replicas")),
        Column("READY", _int("status", "readyReplicas")),
        AGE,
        *_workload_wide(),
    ],
    "endpointslices": [
        Column("ADDRESSTYPE", _text("addressType")),
        Column("PORTS", lambda o, now: slice_ports(o)),
        Column("ENDPOINTS", lambda o, now: slice_endpoints(o)),
        AGE,
    ],
    "namespaces": [
        Column("STATUS", _text("status", "phase")),
        AGE,
    ],
}


def qualified_kind(rt: ResourceType) -> str:
    """`service`, `deployment.apps`: how kubectl names a kind in `kind/name`."""
    kind = rt.kind.lower()
    return f"{kind}.{rt.group}" if rt.group else kind


def object_name(rt: ResourceType, obj: Obj) -> str:
    """`-o name` and the NAME cell when several kinds print: `service/mysvc`."""
    return f"{qualified_kind(rt)}/{_get(obj, 'metadata', 'name')}"


@dataclass(frozen=True)
class TableSpec:
    """What decides a table's shape: the kind, `-o wide`, `-A`, `kind/name` names."""
    rt: ResourceType
    wide: bool = False
    with_namespace: bool = False
    kind_prefix: bool = False

    def columns(self) -> list[Column]:
        cols = COLUMNS.get(self.rt.plural, [AGE])
        return [c for c in cols if self.wide or not c.wide_only]

    def header(self) -> list[str]:
        head = ["NAME"] + [c.header for c in self.columns()]
        return (["NAMESPACE"] if self.with_namespace else []) + head

    def row(self, obj: Obj, now: datetime) -> list[str]:
        name = object_name(self.rt, obj) if self.kind_prefix else str(_get(obj, "metadata", "name"))
        cells = [name] + [c.cell(obj, now) for c in self.columns()]
        if self.with_namespace:
            cells.insert(0, str(_get(obj, "metadata", "namespace") or ""))
        return cells


def render_table(rows: Iterable[list[str]], widths: list[int] | None = None) -> str:
    """Columns padded like kubectl's tabwriter (min width 6, padding 3, last cell unpadded).

    `widths` lets a watch keep the widths of its first table for later rows.
    """
    rows = list(rows)
    if widths is None:
        widths = column_widths(rows)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells))
    return "".join(line + "\n" for line in lines)


def column_widths(rows: list[list[str]]) -> list[int]:
    count = max((len(r) for r in rows), default=0)
    return [max(6, max((len(r[i]) for r in rows if i < len(r)), default=0) + 3)
            for i in range(count)]
