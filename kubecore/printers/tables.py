"""The columns `kubectl get` shows for each kind, as pure functions of the object.

kube-apiserver renders lists as `meta.k8s.io/v1` Tables when the client asks for
them (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`); kubectl prints the
cells as they come. The column names, priorities and cell texts here follow
kubectl's own printers (pkg/printers/internalversion), so `kubectl get` against this
server reads the same as against a real cluster. The API server and the project's
own CLI both render from this module; nothing here does I/O.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubecore.api.types import Obj

Cell = Any
CellFn = Callable[[Obj, datetime], Cell]

NONE = "<none>"
UNSET = "<unset>"
TABLE_API_VERSIONS = ("meta.k8s.io/v1", "meta.k8s.io/v1beta1")


@dataclass(frozen=True)
class Column:
    name: str
    cell: CellFn
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> Obj:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


# --- shared cell helpers ------------------------------------------------------------

def _get(obj: Any, *path: str) -> Any:
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: precise when recent, coarse when old."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age_since(timestamp: Any, now: datetime) -> str:
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())


def format_labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def label_selector_text(selector: Any) -> str:
    """metav1.FormatLabelSelector: matchLabels then matchExpressions, `<none>` if empty."""
    if not isinstance(selector, dict):
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) if parts else NONE


def _or_none(value: Any) -> str:
    return value if isinstance(value, str) and value else NONE


def _name(obj: Obj, now: datetime) -> str:
    return _get(obj, "metadata", "name") or ""


def _age(obj: Obj, now: datetime) -> str:
    return age_since(_get(obj, "metadata", "creationTimestamp"), now)


NAME = Column("Name", _name, format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", _age, description="CreationTimestamp is a timestamp representing the server "
             "time when this object was created.")


# --- Service --------------------------------------------------------------------------

def service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    external = [ip for ip in spec.get("externalIPs") or [] if isinstance(ip, str)]
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if stype == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") or ""
                   for i in _list(svc, "status", "loadBalancer", "ingress")]
        found = [x for x in ingress if x] + external
        return ",".join(found) if found else "<pending>"
    if stype == "ExternalName":
        return spec.get("externalName") or NONE
    return "<unknown>"


def service_ports(svc: Obj) -> str:
    out = []
    for p in _list(svc, "spec", "ports"):
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) if out else NONE


SERVICE_COLUMNS = (
    NAME,
    Column("Type", lambda o, n: _get(o, "spec", "type") or "ClusterIP",
           description="The type of the service."),
    Column("Cluster-IP", lambda o, n: _or_none(_get(o, "spec", "clusterIP")),
           description="The IP address of the service."),
    Column("External-IP", lambda o, n: service_external_ip(o),
           description="External IPs the service answers on."),
    Column("Port(s)", lambda o, n: service_ports(o), description="The ports of the service."),
    AGE,
    Column("Selector", lambda o, n: format_labels(_get(o, "spec", "selector")), priority=1,
           description="Route service traffic to pods with label keys and values matching this "
           "selector."),
)


# --- Pod -----------------------------------------------------------------------------------

def _has_ready_condition(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in _list(pod, "status", "conditions"))


@dataclass
class _Restarts:
    """The restarts of a pod's containers, and when the last one ended."""
    count: int = 0
    last: datetime | None = None

    def note(self, cs: Obj) -> None:
        self.count += _int(cs.get("restartCount"))
        finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (self.last is None or finished > self.last):
            self.last = finished

    def text(self, now: datetime) -> str:
        if self.count and self.last is not None:
            return f"{self.count} ({human_duration((now - self.last).total_seconds())} ago)"
        return str(self.count)


def _exit_text(term: Obj) -> str:
    return f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{_int(term.get('exitCode'))}"


def pod_summary(pod: Obj, now: datetime) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) as kubectl's printPod computes them: the init containers'
    state while one is unfinished, else the containers' state, else the pod's reason or phase."""
    status = pod.get("status") or {}
    total = len(_list(pod, "spec", "containers"))
    restarts = _Restarts()
    ready = 0
    reason = _init_reason(pod, status, restarts)
    if reason is None:
        ready, reason = _containers_reason(pod, status, restarts,
                                           status.get("reason") or status.get("phase") or "")
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return f"{ready}/{total}", reason, restarts.text(now)


def _init_reason(pod: Obj, status: Obj, restarts: _Restarts) -> str | None:
    """`Init:...` for the first init container that has not finished (sidecars count once
    started); None when all have."""
    init_specs = _list(pod, "spec", "initContainers")
    for i, cs in enumerate(_list(status, "initContainerStatuses")):
        restarts.note(cs)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and _int(term.get("exitCode")) == 0:
            continue
        sidecar = i < len(init_specs) and init_specs[i].get("restartPolicy") == "Always"
        if sidecar and cs.get("started"):
            continue
        if term:
            return "Init:" + (term.get("reason") or _exit_text(term))
        if wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            waiting: str = "Init:" + wait["reason"]
            return waiting
        return f"Init:{i}/{len(init_specs)}"
    return None


def _containers_reason(pod: Obj, status: Obj, restarts: _Restarts, reason: str) -> tuple[int, str]:
    """(ready containers, reason): the first container (in spec order) that waits or ended
    with a reason gives it; Completed with others still running reads Running or NotReady."""
    ready, has_running = 0, False
    for cs in reversed(_list(status, "containerStatuses")):
        restarts.note(cs)
        state = cs.get("state") or {}
        wait, term = state.get("waiting"), state.get("terminated")
        if wait and wait.get("reason"):
            reason = wait["reason"]
        elif term and term.get("reason"):
            reason = term["reason"]
        elif term:
            reason = _exit_text(term)
        elif state.get("running"):
            has_running = True
            ready += 1 if cs.get("ready") else 0
    if reason == "Completed" and has_running:
        reason = "Running" if _has_ready_condition(pod) else "NotReady"
    return ready, reason


def pod_readiness_gates(pod: Obj) -> str:
    gates = [g.get("conditionType") for g in _list(pod, "spec", "readinessGates")]
    if not gates:
        return NONE
    true = {c.get("type") for c in _list(pod, "status", "conditions") if c.get("status") == "True"}
    return f"{sum(1 for g in gates if g in true)}/{len(gates)}"


POD_COLUMNS = (
    NAME,
    Column("Ready", lambda o, n: pod_summary(o, n)[0],
           description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", lambda o, n: pod_summary(o, n)[1],
           description="The aggregate status of the containers in this pod."),
    Column("Restarts", lambda o, n: pod_summary(o, n)[2],
           description="The number of times the containers in this pod have been restarted "
           "and when the last container in this pod has restarted."),
    AGE,
    Column("IP", lambda o, n: _or_none(_get(o, "status", "podIP")), priority=1,
           description="IP address allocated to the pod."),
    Column("Node", lambda o, n: _or_none(_get(o, "spec", "nodeName")), priority=1,
           description="Name of the Node this pod is assigned to."),
    Column("Nominated Node", lambda o, n: _or_none(_get(o, "status", "nominatedNodeName")),
           priority=1, description="Name of the node where this pod might be scheduled."),
    Column("Readiness Gates", lambda o, n: pod_readiness_gates(o), priority=1,
           description="Pod readiness gates."),
)


# --- Node ----------------------------------------------------------------------------------

def node_status(node: Obj) -> str:
    ready = [c for c in _list(node, "status", "conditions") if c.get("type") == "Ready"]
    parts = [("Ready" if ready[0].get("status") == "True" else "NotReady") if ready else "Unknown"]
    if _get(node, "spec", "unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.split("/", 1)[1]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) if roles else NONE


def node_address(node: Obj, kind: str) -> str:
    for a in _list(node, "status", "addresses"):
        if a.get("type") == kind and a.get("address"):
            address: str = a["address"]
            return address
    return NONE


def _node_info(field: str) -> CellFn:
    return lambda o, n: _get(o, "status", "nodeInfo", field) or "<unknown>"


NODE_COLUMNS = (
    NAME,
    Column("Status", lambda o, n: node_status(o), description="The status of the node."),
    Column("Roles", lambda o, n: node_roles(o), description="The roles of the node."),
    AGE,
    Column("Version", lambda o, n: _get(o, "status", "nodeInfo", "kubeletVersion") or "",
           description="Kubelet Version reported by the node."),
    Column("Internal-IP", lambda o, n: node_address(o, "InternalIP"), priority=1,
           description="List of addresses reachable to the node."),
    Column("External-IP", lambda o, n: node_address(o, "ExternalIP"), priority=1,
           description="List of addresses reachable to the node."),
    Column("OS-Image", _node_info("osImage"), priority=1, description="OS Image reported by the node."),
    Column("Kernel-Version", _node_info("kernelVersion"), priority=1,
           description="Kernel Version reported by the node."),
    Column("Container-Runtime", _node_info("containerRuntimeVersion"), priority=1,
           description="Container Runtime Version reported by the node."),
)


# --- Namespace, EndpointSlice, Event ------------------------------------------------------------

NAMESPACE_COLUMNS = (
    NAME,
    Column("Status", lambda o, n: _get(o, "status", "phase") or "",
           description="The status of the namespace."),
    AGE,
)


def _first_three(values: list[str]) -> str:
    shown = ",".join(values[:3])
    if len(values) > 3:
        return f"{shown} + {len(values) - 3} more..."
    return shown or UNSET


def slice_ports(es: Obj) -> str:
    out = []
    for p in _list(es, "ports"):
        if isinstance(p.get("port"), int):
            out.append(str(p["port"]))
        elif p.get("name"):
            out.append(p["name"])
        else:
            out.append("*")
    return _first_three(out)


def slice_endpoints(es: Obj) -> str:
    return _first_three([a for ep in _list(es, "endpoints") for a in ep.get("addresses") or []])


ENDPOINTSLICE_COLUMNS = (
    NAME,
    Column("AddressType", lambda o, n: o.get("addressType") or "",
           description="The type of address carried by this EndpointSlice."),
    Column("Ports", lambda o, n: slice_ports(o), description="The ports of this EndpointSlice."),
    Column("Endpoints", lambda o, n: slice_endpoints(o),
           description="The addresses of the endpoints in this EndpointSlice."),
    AGE,
)


def _event_first_seen(ev: Obj, now: datetime) -> str:
    return age_since(ev.get("firstTimestamp") or ev.get("eventTime"), now)


def _event_last_seen(ev: Obj, now: datetime) -> str:
    """printEvent's: the series' last observation, else lastTimestamp, else the first."""
    series_last = (ev.get("series") or {}).get("lastObservedTime")
    if series_last:
        return age_since(series_last, now)
    if ev.get("lastTimestamp"):
        return age_since(ev["lastTimestamp"], now)
    return _event_first_seen(ev, now)


def event_count(ev: Obj) -> int:
    """Singleton events of the events.k8s.io API have no count: one."""
    series = ev.get("series") or {}
    if series:
        return _int(series.get("count")) or 1
    return _int(ev.get("count")) or 1


def _event_object(ev: Obj) -> str:
    ref = ev.get("involvedObject") or ev.get("regarding") or {}
    kind = (ref.get("kind") or "").lower()
    return f"{kind}/{ref['name']}" if ref.get("name") else kind


def event_source(ev: Obj) -> str:
    """`kubelet, mc-node-1`: source or reporting component, and host or instance."""
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    if not component:
        return "<unknown>"
    return f"{component}, {instance}" if instance else component


EVENT_COLUMNS = (
    Column("Last Seen", _event_last_seen, description="Time of the last occurrence."),
    Column("Type", lambda o, n: o.get("type") or "", description="Type of this event."),
    Column("Reason", lambda o, n: o.get("reason") or "", description="Why the event happened."),
    Column("Object", lambda o, n: _event_object(o), description="The object this event is about."),
    Column("Subobject", lambda o, n: _get(o, "involvedObject", "fieldPath") or "", priority=1,
           description="The part of the object this event is about (a container)."),
    Column("Source", lambda o, n: event_source(o), priority=1,
           description="The component reporting this event."),
    Column("Message", lambda o, n: (o.get("message") or o.get("note") or "").strip(),
           description="A human-readable description of the event."),
    Column("First Seen", _event_first_seen, priority=1,
           description="The time at which the event was first recorded."),
    Column("Count", lambda o, n: event_count(o), type="integer", priority=1,
           description="The number of times this event has occurred."),
    Column("Name", _name, priority=1, format="name",
           description="Name must be unique within a namespace."),
)


SECRET_COLUMNS = (
    NAME,
    Column("Type", lambda o, n: o.get("type") or "",
           description="Used to facilitate programmatic handling of secret data."),
    Column("Data", lambda o, n: len(o.get("data") or {}),
           description="Data contains the secret data. Each key must consist of alphanumeric "
           "characters, '-', '_' or '.'."),
    AGE,
)


# --- apps/v1 ---------------------------------------------------------------------------------------

def _containers(obj: Obj) -> list[Obj]:
    return _list(obj, "spec", "template", "spec", "containers")


def _workload_wide() -> tuple[Column, ...]:
    return (
        Column("Containers", lambda o, n: ",".join(c.get("name", "") for c in _containers(o)),
               priority=1, description="Names of each container in the template."),
        Column("Images", lambda o, n: ",".join(c.get("image", "") for c in _containers(o)),
               priority=1, description="Images referenced by each container in the template."),
        Column("Selector", lambda o, n: label_selector_text(_get(o, "spec", "selector")),
               priority=1, description="Label selector for pods."),
    )


def _replicas(obj: Obj) -> int:
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else _int(value)


DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", lambda o, n: f"{_int(_get(o, 'status', 'readyReplicas'))}/{_replicas(o)}",
           description="Number of the pod with ready state."),
    Column("Up-to-date", lambda o, n: _int(_get(o, "status", "updatedReplicas")), type="integer",
           description="Total number of non-terminated pods targeted by this deployment that "
           "have the desired template spec."),
    Column("Available", lambda o, n: _int(_get(o, "status", "availableReplicas")), type="integer",
           description="Total number of available pods targeted by this deployment."),
    AGE,
    *_workload_wide(),
)

REPLICASET_COLUMNS = (
    NAME,
    Column("Desired", lambda o, n: _replicas(o), type="integer",
           description="Number of desired pods."),
    Column("Current", lambda o, n: _int(_get(o, "status", "replicas")), type="integer",
           description="Number of actual replicas."),
    Column("Ready", lambda o, n: _int(_get(o, "status", "readyReplicas")), type="integer",
           description="The number of ready replicas for this replica set."),
    AGE,
    *_workload_wide(),
)

STATEFULSET_COLUMNS = (
    NAME,
    Column("Ready", lambda o, n: f"{_int(_get(o, 'status', 'readyReplicas'))}/{_replicas(o)}",
           description="Number of the pod with ready state"),
    AGE,
    *_workload_wide()[:2],
)

# --- RBAC ---------------------------------------------------------------------------------------

def _created_at(obj: Obj, now: datetime) -> str:
    created = parse_time(_get(obj, "metadata", "creationTimestamp"))
    return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else ""


ROLE_COLUMNS = (
    NAME,
    Column("Created At", _created_at, type="date", description="CreationTimestamp is a timestamp "
           "representing the server time when this object was created."),
)


def binding_subjects(binding: Obj, kind: str) -> str:
    """kubectl's SubjectsStrings: users and groups by name, ServiceAccounts as ns/name."""
    out = []
    for s in _list(binding, "subjects"):
        if not isinstance(s, dict) or s.get("kind") != kind:
            continue
        name = s.get("name") or ""
        out.append(f"{s.get('namespace') or ''}/{name}" if kind == "ServiceAccount" else name)
    return ", ".join(out)


def _binding_columns(what: str) -> tuple[Column, ...]:
    return (
        NAME,
        Column("Role", lambda o, n: f"{_get(o, 'roleRef', 'kind') or ''}/{_get(o, 'roleRef', 'name') or ''}",
               description="RoleRef can reference a Role in the current namespace or a ClusterRole "
               "in the global namespace. If the RoleRef cannot be resolved, the Authorizer must "
               "return an error. This field is immutable."),
        AGE,
        Column("Users", lambda o, n: binding_subjects(o, "User"), priority=1,
               description=f"Users in the {what}"),
        Column("Groups", lambda o, n: binding_subjects(o, "Group"), priority=1,
               description=f"Groups in the {what}"),
        Column("ServiceAccounts", lambda o, n: binding_subjects(o, "ServiceAccount"), priority=1,
               description=f"ServiceAccounts in the {what}"),
    )


# --- ServiceAccount, ConfigMap -----------------------------------------------------------

SERVICEACCOUNT_COLUMNS = (
    NAME,
    Column("Secrets", lambda o, n: len(_list(o, "secrets")), type="string", format="",
           description="Secrets is a list of the secrets in the same namespace that pods running "
           "using this ServiceAccount are allowed to use."),
    AGE,
)
CONFIGMAP_COLUMNS = (
    NAME,
    Column("Data", lambda o, n: len(_get(o, "data") or {}) + len(_get(o, "binaryData") or {}),
           description="Data contains the configuration data."),
    AGE,
)



def _controller_of(obj: Obj, now: datetime) -> str:
    """kubectl's CONTROLLER column: `<kind lower>.<group>/<name>` of the controlling owner."""
    for ref in _list(obj, "metadata", "ownerReferences"):
        if isinstance(ref, dict) and ref.get("controller"):
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "").lower()
            return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return NONE


CONTROLLERREVISION_COLUMNS = (
    NAME,
    Column("Controller", _controller_of, description="Controller of the object"),
    Column("Revision", lambda o, n: _int(_get(o, "revision")), type="integer",
           description="Revision indicates the revision of the state represented by Data."),
    AGE,
)

def _status_count(field: str, description: str) -> Column:
    return Column(field, lambda o, n: _int(_get(o, "status", _STATUS_FIELDS[field])),
                  type="integer", description=description)


_STATUS_FIELDS = {"Desired": "desiredNumberScheduled", "Current": "currentNumberScheduled",
                  "Ready": "numberReady", "Up-to-date": "updatedNumberScheduled",
                  "Available": "numberAvailable"}

DAEMONSET_COLUMNS = (
    NAME,
    _status_count("Desired", "The total number of nodes that should be running the daemon pod "
                  "(including nodes correctly running the daemon pod)."),
    _status_count("Current", "The number of nodes that are running at least 1 daemon pod and "
                  "are supposed to run the daemon pod."),
    _status_count("Ready", "numberReady is the number of nodes that should be running the daemon "
                  "pod and have one or more of the daemon pod running with a Ready Condition."),
    _status_count("Up-to-date", "The total number of nodes that are running updated daemon pod"),
    _status_count("Available", "The number of nodes that should be running the daemon pod and "
                  "have one or more of the daemon pod running and available (ready for at least "
                  "spec.minReadySeconds)"),
    Column("Node Selector",
           lambda o, n: format_labels(_get(o, "spec", "template", "spec", "nodeSelector")),
           description="NodeSelector is a selector which must be true for the pod to fit on a "
           "node. Selector which must match a node's labels for the pod to be scheduled on that "
           "node."),
    AGE,
    *_workload_wide(),
)


def format_endpoints(obj: Obj, now: datetime | None = None) -> str:
    """kubectl's formatEndpoints: the first three ready `ip:port` (`ip` for a subset without
    ports), then ` + N more...` counting every ready address of every port; `<none>`
    without subsets."""
    subsets = [s for s in _list(obj, "subsets") if isinstance(s, dict)]
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [str(a.get("ip") or "") for a in _list(subset, "addresses") if isinstance(a, dict)]
        ports: list[dict[str, Any] | None] = [p for p in _list(subset, "ports") if isinstance(p, dict)]
        for port in ports or [None]:
            count += len(ips)
            for ip in ips:
                if len(shown) == 3:
                    break
                if port is None:
                    shown.append(ip)
                else:
                    host = f"[{ip}]" if ":" in ip else ip
                    shown.append(f"{host}:{_int(port.get('port'))}")
    text = ",".join(shown)
    return f"{text} + {count - 3} more..." if count > 3 else text


ENDPOINTS_COLUMNS = (
    NAME,
    Column("Endpoints", format_endpoints,
           description="The set of all endpoints is the union of all subsets. Addresses are placed "
           "into subsets according to the IPs they share. A single address with multiple ports, "
           "some of which are ready and some of which are not (because they come from different "
           "containers) will result in the address being displayed in different subsets for the "
           "different ports. No address will appear in both Addresses and NotReadyAddresses in "
           "the same subset. Sets of addresses and ports that comprise a service."),
    AGE,
)


# --- batch/v1 ----------------------------------------------------------------------------------

def _true_condition(obj: Obj, ctype: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == ctype and c.get("status") == "True"
               for c in _list(obj, "status", "conditions"))


def job_status(job: Obj) -> str:
    """kubectl's STATUS of a Job (1.30+): a finished condition first, then what is pending."""
    for ctype, text in (("Complete", "Complete"), ("Failed", "Failed")):
        if _true_condition(job, ctype):
            return text
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _true_condition(job, ctype):
            return ctype
    return "Running"


def job_completions(job: Obj) -> str:
    succeeded = _int(_get(job, "status", "succeeded"))
    completions = _get(job, "spec", "completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _int(_get(job, "spec", "parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def job_duration(job: Obj, now: datetime) -> str:
    start = parse_time(_get(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(_get(job, "status", "completionTime")) or now
    return human_duration((end - start).total_seconds())


def _template_columns(*path: str) -> tuple[Column, ...]:
    """CONTAINERS, IMAGES, SELECTOR of the pod template at `path` (wide)."""
    def containers(o: Obj) -> list[Obj]:
        return _list(o, *path, "template", "spec", "containers")

    return (
        Column("Containers", lambda o, n: ",".join(c.get("name", "") for c in containers(o)),
               priority=1, description="Names of each container in the template."),
        Column("Images", lambda o, n: ",".join(c.get("image", "") for c in containers(o)),
               priority=1, description="Images referenced by each container in the template."),
        Column("Selector", lambda o, n: label_selector_text(_get(o, *path, "selector")), priority=1,
               description="A label query over pods that should match the pod count. Normally, "
               "the system sets this field for you. More info: https://kubernetes.io/docs/"
               "concepts/overview/working-with-objects/labels/#label-selectors"),
    )


JOB_COLUMNS = (
    NAME,
    Column("Status", lambda o, n: job_status(o), description="Status of the job."),
    Column("Completions", lambda o, n: job_completions(o),
           description="The number of pods which reached phase Succeeded. The value increases "
           "monotonically for a given spec. However, it may decrease in reaction to scale down "
           "of elastic indexed jobs."),
    Column("Duration", job_duration, description="Time required to complete the job."),
    AGE,
    *_template_columns("spec"),
)


def _bool_ptr(value: Any) -> str:
    if not isinstance(value, bool):
        return UNSET
    return "True" if value else "False"


def _last_schedule(cj: Obj, now: datetime) -> str:
    when = _get(cj, "status", "lastScheduleTime")
    return age_since(when, now) if when else NONE


CRONJOB_COLUMNS = (
    NAME,
    Column("Schedule", lambda o, n: _get(o, "spec", "schedule") or "",
           description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column("Timezone", lambda o, n: _or_none(_get(o, "spec", "timeZone")),
           description="The time zone name for the given schedule, see https://en.wikipedia.org/"
           "wiki/List_of_tz_database_time_zones."),
    Column("Suspend", lambda o, n: _bool_ptr(_get(o, "spec", "suspend")), type="boolean",
           description="This flag tells the controller to suspend subsequent executions, it does "
           "not apply to already started executions.  Defaults to false."),
    Column("Active", lambda o, n: len(_list(o, "status", "active")), type="integer",
           description="A list of pointers to currently running jobs."),
    Column("Last Schedule", _last_schedule,
           description="Information when was the last time the job was successfully scheduled."),
    AGE,
    *_template_columns("spec", "jobTemplate", "spec"),
)

LEASE_COLUMNS = (
    NAME,
    Column("Holder", lambda o, n: str(_get(o, "spec", "holderIdentity") or ""),
           description="holderIdentity contains the identity of the holder of a current lease."),
    AGE,
)

NETWORKPOLICY_COLUMNS = (
    NAME,
    Column("Pod-Selector", lambda o, n: label_selector_text(_get(o, "spec", "podSelector")),
           description="Selects the pods to which this NetworkPolicy object applies."),
    AGE,
)

DEFAULT_COLUMNS = (NAME, AGE)

COLUMNS_BY_KIND: dict[str, tuple[Column, ...]] = {
    "Service": SERVICE_COLUMNS,
    "Pod": POD_COLUMNS,
    "Node": NODE_COLUMNS,
    "Namespace": NAMESPACE_COLUMNS,
    "EndpointSlice": ENDPOINTSLICE_COLUMNS,
    "Event": EVENT_COLUMNS,
    "Deployment": DEPLOYMENT_COLUMNS,
    "ReplicaSet": REPLICASET_COLUMNS,
    "Secret": SECRET_COLUMNS,
    "Role": ROLE_COLUMNS,
    "ClusterRole": ROLE_COLUMNS,
    "RoleBinding": _binding_columns("roleBinding"),
    "ClusterRoleBinding": _binding_columns("clusterRoleBinding"),
    "ServiceAccount": SERVICEACCOUNT_COLUMNS,
    "ConfigMap": CONFIGMAP_COLUMNS,
    "ControllerRevision": CONTROLLERREVISION_COLUMNS,
    "StatefulSet": STATEFULSET_COLUMNS,
    "DaemonSet": DAEMONSET_COLUMNS,
    "Endpoints": ENDPOINTS_COLUMNS,
    "Job": JOB_COLUMNS,
    "CronJob": CRONJOB_COLUMNS,
    "Lease": LEASE_COLUMNS,
    "NetworkPolicy": NETWORKPOLICY_COLUMNS,
}


def columns_for(kind: str) -> tuple[Column, ...]:
    return COLUMNS_BY_KIND.get(kind, DEFAULT_COLUMNS)


def cells(kind: str, obj: Obj, now: datetime) -> list[Cell]:
    return [col.cell(obj, now) for col in columns_for(kind)]


# --- the Table object ----------------------------------------------------------------------------

def partial_metadata(obj: Obj, api_version: str = "meta.k8s.io/v1") -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version,
            "metadata": obj.get("metadata") or {}}


def table(kind: str, objs: list[Obj], *, now: datetime | None = None,
          include_object: str = "Metadata", api_version: str = "meta.k8s.io/v1",
          resource_version: str = "", with_headers: bool = True) -> Obj:
    """A `Table` of `objs`. include_object: None | Metadata | Object, as the query
    parameter `includeObject` says."""
    now = now or datetime.now(UTC)
    cols = columns_for(kind)
    rows = []
    for obj in objs:
        row: Obj = {"cells": [c.cell(obj, now) for c in cols]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj, api_version)
        rows.append(row)
    out: Obj = {"kind": "Table", "apiVersion": api_version,
                "metadata": {"resourceVersion": resource_version} if resource_version else {},
                "columnDefinitions": [c.definition() for c in cols] if with_headers else [],
                "rows": rows}
    return out


def render_text(kind: str, objs: list[Obj], *, wide: bool = False,
                now: datetime | None = None) -> str:
    """The rows as kubectl prints them (upper-case headers, columns padded by three
    spaces): for the project's CLI and for tests."""
    now = now or datetime.now(UTC)
    cols = [c for c in columns_for(kind) if wide or c.priority == 0]
    lines = [[c.name.upper() for c in cols]]
    for obj in objs:
        lines.append([str(c.cell(obj, now)) for c in cols])
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(line, widths, strict=False)).rstrip()
                     for line in lines) + "\n"
