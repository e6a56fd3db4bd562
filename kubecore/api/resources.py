"""The resource registry: every API resource is declared here, once.

A declaration names its group/version/kind, URL plural and short names, the
pydantic model for its shape, its semantic validation, its defaulting, and the
field selectors it supports. The API server, the clients and the CLI all read
from this table; adding a resource is adding an entry.
"""
from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from kubecore.api import models
from kubecore.api import validation as v
from kubecore.api.errors import Cause
from kubecore.api.selectors import FieldGetter
from kubecore.api.types import Obj

Validator = Callable[[Obj, Obj | None], list[Cause]]
Defaulter = Callable[[Obj], None]


def _noop_validate(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


def _noop_default(obj: Obj) -> None:
    return None


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[BaseModel]
    name_rule: Callable[[str], list[str]] = v.dns1123_subdomain_errors
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    validate: Validator = _noop_validate
    default: Defaulter = _noop_default
    field_getters: dict[str, FieldGetter] = field(default_factory=dict)
    # Objects whose deletion is graceful (pods): DELETE marks them, the node agent finishes it.
    graceful_delete: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def key_prefix(self, namespace: str | None = None) -> str:
        base = f"/registry/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


# --- shared metadata rules -------------------------------------------------------

def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _child(obj: Obj, key: str, default: Any = None) -> Any:
    """obj[key], set to `default` (a new dict unless given) when missing or null, as
    defaulting treats an explicit null like an absent field."""
    if obj.get(key) is None:
        obj[key] = {} if default is None else default
    return obj[key]


def metadata_causes(obj: Obj, rt: ResourceType) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired"))
    else:
        for msg in rt.name_rule(name):
            causes.append(Cause("metadata.name", f'Invalid value: "{name}": {msg}'))
    for key, value in (meta.get("labels") or {}).items():
        for msg in v.label_key_errors(key):
            causes.append(Cause("metadata.labels", f'Invalid value: "{key}": {msg}'))
        for msg in v.label_value_errors(value):
            causes.append(Cause("metadata.labels", f'Invalid value: "{value}": {msg}'))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        for msg in v.label_key_errors(key):
            causes.append(Cause("metadata.annotations", f'Invalid value: "{key}": {msg}'))
    if sum(len(k) + len(val) for k, val in annotations.items()) > 256 * 1024:
        causes.append(Cause("metadata.annotations", "Too long: must have at most 262144 bytes",
                            "FieldValueTooLong"))
    return causes


def _selector_map_causes(path: str, selector: dict[str, str] | None) -> list[Cause]:
    causes = []
    for key, value in (selector or {}).items():
        for msg in v.label_key_errors(key):
            causes.append(Cause(path, f'Invalid value: "{key}": {msg}'))
        for msg in v.label_value_errors(value):
            causes.append(Cause(path, f'Invalid value: "{value}": {msg}'))
    return causes


PROTOCOLS = ("TCP", "UDP", "SCTP")


def _protocol_causes(path: str, proto: Any) -> list[Cause]:
    if proto not in PROTOCOLS:
        return [Cause(path, f'Unsupported value: "{proto}": supported values: "SCTP", "TCP", "UDP"',
                      "FieldValueNotSupported")]
    return []


def _int_or_name_port_causes(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int):
        return [Cause(path, f"Invalid value: {value}: {m}") for m in v.port_number_errors(value)]
    if isinstance(value, str):
        if value.isdigit():
            return _int_or_name_port_causes(path, int(value))
        return [Cause(path, f'Invalid value: "{value}": {m}') for m in v.port_name_errors(value)]
    return [Cause(path, "Invalid value: must be a port number or a port name")]


# --- Service ----------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "NodePort")


def default_service(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "NodePort":
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and isinstance(port.get("port"), int):
                port["targetPort"] = port["port"]
    _child(obj, "status", {"loadBalancer": {}})


def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    stype = spec.get("type", "ClusterIP")
    if stype not in SERVICE_TYPES:
        causes.append(Cause("spec.type", f'Unsupported value: "{stype}": supported values: '
                            '"ClusterIP", "NodePort"', "FieldValueNotSupported"))
    cluster_ip = spec.get("clusterIP") or ""
    headless = cluster_ip == "None"
    if cluster_ip and not headless and v.ipv4_errors(cluster_ip):
        causes.append(Cause("spec.clusterIP", f'Invalid value: "{cluster_ip}": must be a valid '
                            'IPv4 address, or "None" for a headless service'))
    if headless and stype == "NodePort":
        causes.append(Cause("spec.clusterIP", 'Invalid value: "None": may not be set to \'None\' '
                            'for NodePort services'))
    ports = spec.get("ports") or []
    if not ports and not headless:
        causes.append(Cause("spec.ports", "Required value", "FieldValueRequired"))
    seen_names: set[str] = set()
    seen_ports: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
        if name:
            for msg in v.dns1123_label_errors(name):
                causes.append(Cause(f"{path}.name", f'Invalid value: "{name}": {msg}'))
            if name in seen_names:
                causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
            seen_names.add(name)
        for msg in v.port_number_errors(port.get("port")):
            causes.append(Cause(f"{path}.port", f"Invalid value: {port.get('port')}: {msg}"))
        proto = port.get("protocol", "TCP")
        causes += _protocol_causes(f"{path}.protocol", proto)
        key = (port.get("port"), proto)
        if key in seen_ports:
            causes.append(Cause(path, f'Duplicate value: {{"port": {key[0]}, "protocol": "{proto}"}}',
                                "FieldValueDuplicate"))
        seen_ports.add(key)
        if "targetPort" in port:
            causes += _int_or_name_port_causes(f"{path}.targetPort", port["targetPort"])
        if port.get("nodePort") is not None:
            if stype != "NodePort":
                causes.append(Cause(f"{path}.nodePort", "Forbidden: may not be used when `type` is "
                                    f"'{stype}'", "FieldValueForbidden"))
    causes += _selector_map_causes("spec.selector", spec.get("selector"))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP") or ""
        if old_ip and cluster_ip != old_ip:
            causes.append(Cause("spec.clusterIP", f'Invalid value: "{cluster_ip}": field is immutable'))
    return causes


def carry_over_service_allocations(new: Obj, old: Obj) -> None:
    """An update that leaves clusterIP or nodePorts unset keeps the allocated values,
    as kube-apiserver does (so `kubectl apply` of the original manifest works)."""
    nspec, ospec = _child(new, "spec", {}), old.get("spec") or {}
    if not nspec.get("clusterIP") and ospec.get("clusterIP"):
        nspec["clusterIP"] = ospec["clusterIP"]
        if ospec.get("clusterIPs") and not nspec.get("clusterIPs"):
            nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if nspec.get("type") == "NodePort" and ospec.get("type") == "NodePort":
        old_by_key = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                      for p in ospec.get("ports") or []}
        for p in nspec.get("ports") or []:
            if not p.get("nodePort"):
                np = old_by_key.get((p.get("port"), p.get("protocol", "TCP")))
                if np:
                    p["nodePort"] = np


# --- Pod ------------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")


def default_container(c: Obj) -> None:
    c.setdefault("imagePullPolicy", "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            default_container(c)


def default_pod(obj: Obj) -> None:
    default_pod_spec(_child(obj, "spec", {}))
    status = _child(obj, "status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def pod_spec_causes(spec: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(Cause(f"{path}.containers", "Required value", "FieldValueRequired"))
    names: set[str] = set()
    for i, c in enumerate(containers + (spec.get("initContainers") or [])):
        cpath = f"{path}.containers[{i}]"
        name = c.get("name", "")
        for msg in v.dns1123_label_errors(name):
            causes.append(Cause(f"{cpath}.name", f'Invalid value: "{name}": {msg}'))
        if name in names:
            causes.append(Cause(f"{cpath}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        names.add(name)
        if not c.get("image"):
            causes.append(Cause(f"{cpath}.image", "Required value", "FieldValueRequired"))
        port_names: set[str] = set()
        for j, p in enumerate(c.get("ports") or []):
            ppath = f"{cpath}.ports[{j}]"
            for msg in v.port_number_errors(p.get("containerPort")):
                causes.append(Cause(f"{ppath}.containerPort", f"Invalid value: {p.get('containerPort')}: {msg}"))
            causes += _protocol_causes(f"{ppath}.protocol", p.get("protocol", "TCP"))
            if p.get("name"):
                for msg in v.port_name_errors(p["name"]):
                    causes.append(Cause(f"{ppath}.name", f'Invalid value: "{p["name"]}": {msg}'))
                if p["name"] in port_names:
                    causes.append(Cause(f"{ppath}.name", f'Duplicate value: "{p["name"]}"',
                                        "FieldValueDuplicate"))
                port_names.add(p["name"])
        for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(probe_name) or {}
            handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if probe.get(h)]
            if probe and len(handlers) != 1:
                causes.append(Cause(f"{cpath}.{probe_name}", "Required value: must specify exactly "
                                    "one handler type", "FieldValueRequired"))
            for h in ("httpGet", "tcpSocket"):
                if probe.get(h):
                    causes += _int_or_name_port_causes(f"{cpath}.{probe_name}.{h}.port",
                                                       probe[h].get("port"))
    rp = spec.get("restartPolicy", "Always")
    if rp not in RESTART_POLICIES:
        causes.append(Cause(f"{path}.restartPolicy", f'Unsupported value: "{rp}": supported values: '
                            '"Always", "OnFailure", "Never"', "FieldValueNotSupported"))
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        causes.append(Cause(f"{path}.terminationGracePeriodSeconds",
                            f"Invalid value: {grace}: must be greater than or equal to 0"))
    causes += _selector_map_causes(f"{path}.nodeSelector", spec.get("nodeSelector"))
    return causes


def _strip_images(spec: Obj) -> Obj:
    s = copy.deepcopy(spec)
    for c in (s.get("containers") or []) + (s.get("initContainers") or []):
        c.pop("image", None)
    return s


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = pod_spec_causes(obj.get("spec") or {}, "spec")
    if old is not None:
        new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
        if _strip_images(new_spec) != _strip_images(old_spec):
            causes.append(Cause("spec", "Forbidden: pod updates may not change fields other than "
                                "`spec.containers[*].image`, `spec.initContainers[*].image` "
                                "(the node binding goes through pods/binding)", "FieldValueForbidden"))
    return causes


# --- Node, Namespace ---------------------------------------------------------------

def default_node(obj: Obj) -> None:
    _child(obj, "spec", {})
    _child(obj, "status", {})


def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    cidr = spec.get("podCIDR")
    if cidr:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            causes.append(Cause("spec.podCIDR", f'Invalid value: "{cidr}": must be a valid CIDR'))
    if old is not None:
        old_cidr = (old.get("spec") or {}).get("podCIDR")
        if old_cidr and cidr != old_cidr:
            causes.append(Cause("spec.podCIDR", 'Forbidden: node updates may not change podCIDR '
                                'except from "" to valid', "FieldValueForbidden"))
    return causes


def default_namespace(obj: Obj) -> None:
    _child(obj, "spec", {"finalizers": ["kubernetes"]})
    # kubectl sends `status: {}`: the phase is filled in all the same
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("phase", "Active")


# --- EndpointSlice ----------------------------------------------------------------

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


def default_endpointslice(obj: Obj) -> None:
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("name", "")


def validate_endpointslice(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    at = obj.get("addressType")
    if at not in ADDRESS_TYPES:
        causes.append(Cause("addressType", f'Unsupported value: "{at}": supported values: '
                            '"FQDN", "IPv4", "IPv6"', "FieldValueNotSupported"))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        causes.append(Cause("endpoints", f"Too many: {len(endpoints)}: must have at most 1000 items",
                            "FieldValueTooMany"))
    for i, ep in enumerate(endpoints):
        addrs = ep.get("addresses") or []
        if len(addrs) != 1:
            causes.append(Cause(f"endpoints[{i}].addresses", "Required value: must contain exactly "
                                "one address", "FieldValueRequired"))
        for j, a in enumerate(addrs):
            if at == "IPv4" and v.ipv4_errors(a):
                causes.append(Cause(f"endpoints[{i}].addresses[{j}]",
                                    f'Invalid value: "{a}": must be a valid IPv4 address'))
    for i, p in enumerate(obj.get("ports") or []):
        if p.get("port") is not None:
            for msg in v.port_number_errors(p["port"]):
                causes.append(Cause(f"ports[{i}].port", f"Invalid value: {p['port']}: {msg}"))
        causes += _protocol_causes(f"ports[{i}].protocol", p.get("protocol", "TCP"))
    if old is not None and old.get("addressType") != at:
        causes.append(Cause("addressType", f'Invalid value: "{at}": field is immutable'))
    return causes


# --- apps/v1 -------------------------------------------------------------------------

def _default_workload(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    spec.setdefault("replicas", 1)
    tmpl = _child(spec, "template", {})
    default_pod_spec(_child(tmpl, "spec", {}))
    _child(tmpl, "metadata", {})
    _child(obj, "status", {})


def default_deployment(obj: Obj) -> None:
    _default_workload(obj)
    spec = obj["spec"]
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    if spec["strategy"].get("type", "RollingUpdate") == "RollingUpdate":
        spec["strategy"].setdefault("type", "RollingUpdate")
        ru = spec["strategy"].setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def validate_workload(obj: Obj, old: Obj | None) -> list[Cause]:
    from kubecore.api.selectors import labels_match, selector_from_label_selector

    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if isinstance(replicas, int) and replicas < 0:
        causes.append(Cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or "
                            "equal to 0"))
    for name in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        value = spec.get(name)
        if isinstance(value, int) and value < 0:
            causes.append(Cause(f"spec.{name}", f"Invalid value: {value}: must be greater than "
                                "or equal to 0"))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and isinstance(min_ready, int) and 0 <= deadline <= min_ready:
        causes.append(Cause("spec.progressDeadlineSeconds", f"Invalid value: {deadline}: must be "
                            "greater than minReadySeconds"))
    selector = spec.get("selector") or {}
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    else:
        causes += _selector_map_causes("spec.selector.matchLabels", selector.get("matchLabels"))
        tmpl_labels = _get(spec, "template", "metadata", "labels") or {}
        try:
            ok = labels_match(selector_from_label_selector(selector), tmpl_labels)
        except KeyError:
            ok = False
            causes.append(Cause("spec.selector.matchExpressions", "Invalid value: unknown operator"))
        if not ok:
            causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {tmpl_labels}: "
                                "`selector` does not match template `labels`"))
    causes += pod_spec_causes(_get(spec, "template", "spec") or {}, "spec.template.spec")
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    return causes


# --- field selectors -----------------------------------------------------------------

COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: _get(o, "metadata", "name"),
    "metadata.namespace": lambda o: _get(o, "metadata", "namespace"),
}
POD_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.nodeName": lambda o: _get(o, "spec", "nodeName"),
    "status.phase": lambda o: _get(o, "status", "phase"),
    "spec.schedulerName": lambda o: _get(o, "spec", "schedulerName"),
    "spec.restartPolicy": lambda o: _get(o, "spec", "restartPolicy"),
    "status.podIP": lambda o: _get(o, "status", "podIP"),
}
NODE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.unschedulable": lambda o: str(bool(_get(o, "spec", "unschedulable"))).lower(),
}
SERVICE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.clusterIP": lambda o: _get(o, "spec", "clusterIP"),
    "spec.type": lambda o: _get(o, "spec", "type"),
}


def _involved_object(field: str) -> FieldGetter:
    return lambda o: _get(o, "involvedObject", field)


EVENT_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    **{f"involvedObject.{f}": _involved_object(f)
       for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": lambda o: _get(o, "reason"),
    "type": lambda o: _get(o, "type"),
    "source": lambda o: _get(o, "source", "component"),
    "reportingComponent": lambda o: _get(o, "reportingComponent"),
}
NAMESPACE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "status.phase": lambda o: _get(o, "status", "phase"),
}


# --- the table ----------------------------------------------------------------------

NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, models.Namespace,
                          name_rule=v.dns1123_label_errors, short_names=("ns",),
                          subresources=("status",), default=default_namespace,
                          field_getters=NAMESPACE_FIELDS)
SERVICES = ResourceType("", "v1", "Service", "services", "service", True, models.Service,
                        name_rule=v.dns1035_label_errors, short_names=("svc",), categories=("all",),
                        subresources=("status",), validate=validate_service,
                        default=default_service, field_getters=SERVICE_FIELDS)
PODS = ResourceType("", "v1", "Pod", "pods", "pod", True, models.Pod, short_names=("po",),
                    categories=("all",), subresources=("status", "binding", "log", "exec"),
                    validate=validate_pod, default=default_pod, field_getters=POD_FIELDS,
                    graceful_delete=True)
NODES = ResourceType("", "v1", "Node", "nodes", "node", False, models.Node, short_names=("no",),
                     subresources=("status",), validate=validate_node, default=default_node,
                     field_getters=NODE_FIELDS)
ENDPOINTSLICES = ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                              "endpointslice", True, models.EndpointSlice,
                              validate=validate_endpointslice, default=default_endpointslice,
                              field_getters=COMMON_FIELDS)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True,
                           models.Deployment, short_names=("deploy",), categories=("all",),
                           subresources=("status", "scale"), validate=validate_workload,
                           default=default_deployment, field_getters=COMMON_FIELDS)
REPLICASETS = ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True,
                           models.ReplicaSet, short_names=("rs",), categories=("all",),
                           subresources=("status", "scale"), validate=validate_workload,
                           default=_default_workload, field_getters=COMMON_FIELDS)
# core/v1 Events: written by the services through `kubecore.client.events`, read by describe; the
# API server removes them after --event-ttl.
EVENTS = ResourceType("", "v1", "Event", "events", "event", True, models.Event,
                      short_names=("ev",), field_getters=EVENT_FIELDS)

ALL: tuple[ResourceType, ...] = (NAMESPACES, SERVICES, PODS, NODES, ENDPOINTSLICES,
                                 DEPLOYMENTS, REPLICASETS, EVENTS)


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in ALL:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in ALL:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def lookup(name: str) -> ResourceType | None:
    """Resolve what a user types (`svc`, `pods`, `deployment.apps`, `EndpointSlice`)."""
    n = name.lower()
    group = None
    if "." in n:
        n, group = n.split(".", 1)
    for rt in ALL:
        if group is not None and rt.group != group:
            continue
        if n in (rt.plural, rt.singular, rt.kind.lower()) or n in rt.short_names:
            return rt
    return None


def groups() -> dict[str, list[str]]:
    """API groups (named, not core) and their versions."""
    out: dict[str, list[str]] = {}
    for rt in ALL:
        if rt.group and rt.version not in out.setdefault(rt.group, []):
            out[rt.group].append(rt.version)
    return out
