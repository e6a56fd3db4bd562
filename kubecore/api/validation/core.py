"""core/v1 validation: Pod (and the pod spec that workload templates embed), Node,
ConfigMap; the Service's is `service.py`.

Namespaces, Events and ServiceAccounts have no rules beyond their metadata and shape."""
from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from kubecore.api import formats as f
from kubecore.api import nodenet
from kubecore.api.errors import Cause
from kubecore.api.types import Obj
from kubecore.api.validation import podnet
from kubecore.api.validation.meta import label_map_causes

PROTOCOLS = ("TCP", "UDP", "SCTP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


# --- fields several kinds share ------------------------------------------------------

def protocol_causes(path: str, proto: Any) -> list[Cause]:
    if proto not in PROTOCOLS:
        return [Cause(path, f'Unsupported value: "{proto}": supported values: "SCTP", "TCP", "UDP"',
                      "FieldValueNotSupported")]
    return []


def int_or_name_port_causes(path: str, value: Any) -> list[Cause]:
    """A port given as a number or as the name of a container port (targetPort, probes)."""
    if isinstance(value, int):
        return [Cause(path, f"Invalid value: {value}: {m}") for m in f.port_number_errors(value)]
    if isinstance(value, str):
        if value.isdigit():
            return int_or_name_port_causes(path, int(value))
        return [Cause(path, f'Invalid value: "{value}": {m}') for m in f.port_name_errors(value)]
    return [Cause(path, "Invalid value: must be a port number or a port name")]


def port_number_causes(path: str, value: Any) -> list[Cause]:
    return [Cause(path, f"Invalid value: {value}: {msg}") for msg in f.port_number_errors(value)]


def _unique_name_causes(path: str, name: Any, seen: set[Any], check: Any) -> list[Cause]:
    """`check`'s messages for `name`, then a duplicate if an earlier item had it; notes it."""
    causes = [Cause(path, f"Invalid value: {f.go_quote(str(name))}: {msg}") for msg in check(name)]
    if name in seen:
        causes.append(Cause(path, f'Duplicate value: "{name}"', "FieldValueDuplicate"))
    seen.add(name)
    return causes


def _not_negative_causes(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and value < 0:
        return [Cause(path, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


# --- Pod -------------------------------------------------------------------------------

def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    old_spec = (old.get("spec") or {}) if old is not None else None
    causes = pod_spec_causes(obj.get("spec") or {}, "spec", is_pod=True,
                             relaxed_env=uses_relaxed_env_names(old_spec))
    if old is not None:
        new_spec = obj.get("spec") or {}
        if _strip_images(new_spec) != _strip_images(old_spec or {}):
            causes.append(Cause("spec", "Forbidden: pod updates may not change fields other than "
                                "`spec.containers[*].image`, `spec.initContainers[*].image` "
                                "(the node binding goes through pods/binding)", "FieldValueForbidden"))
    return causes


def _strip_images(spec: Obj) -> Obj:
    s = copy.deepcopy(spec)
    for c in (s.get("containers") or []) + (s.get("initContainers") or []):
        c.pop("image", None)
    return s


def uses_relaxed_env_names(old_spec: Obj | None) -> bool:
    """Whether a stored pod spec already holds env names only the relaxed rule allows; its
    updates are then held to that rule, as kube-apiserver does, so they keep working."""
    if old_spec is None:
        return False
    containers = (old_spec.get("containers") or []) + (old_spec.get("initContainers") or [])
    return any(isinstance(e, dict) and isinstance(e.get("name"), str) and f.env_var_name_errors(e["name"])
               for c in containers for e in c.get("env") or [])


def pod_spec_causes(spec: Obj, path: str, *, is_pod: bool = False, relaxed_env: bool = False) -> list[Cause]:
    """A pod's spec, also inside workload templates (`path` names where it sits), in
    ValidatePodSpec's order. Init containers are numbered after the containers, under
    `containers[i]`. `relaxed_env`: env names follow the relaxed rule (see
    `uses_relaxed_env_names`)."""
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(Cause(f"{path}.containers", "Required value", "FieldValueRequired"))
    names: set[str] = set()
    for i, c in enumerate(containers):
        causes += _container_causes(f"{path}.containers[{i}]", c, names, relaxed_env)
    causes += podnet.host_port_conflict_causes(containers, path)
    for i, c in enumerate(spec.get("initContainers") or [], start=len(containers)):
        causes += _container_causes(f"{path}.containers[{i}]", c, names, relaxed_env)
    causes += podnet.host_network_causes(spec, path, is_pod=is_pod)
    rp = spec.get("restartPolicy", "Always")
    if rp not in RESTART_POLICIES:
        causes.append(Cause(f"{path}.restartPolicy", f'Unsupported value: "{rp}": supported values: '
                            '"Always", "OnFailure", "Never"', "FieldValueNotSupported"))
    causes += podnet.dns_policy_causes(spec, path)
    causes += _not_negative_causes(f"{path}.terminationGracePeriodSeconds",
                                   spec.get("terminationGracePeriodSeconds"))
    causes += label_map_causes(f"{path}.nodeSelector", spec.get("nodeSelector"))
    causes += podnet.dns_config_causes(spec, path)
    causes += podnet.hostname_causes(spec, path)
    return causes


def _container_causes(path: str, c: Obj, names: set[str], relaxed_env: bool) -> list[Cause]:
    causes = _unique_name_causes(f"{path}.name", c.get("name", ""), names, f.dns1123_label_errors)
    if not c.get("image"):
        causes.append(Cause(f"{path}.image", "Required value", "FieldValueRequired"))
    causes += _container_ports_causes(path, c.get("ports") or [])
    causes += env_causes(f"{path}.env", c.get("env") or [], relaxed=relaxed_env)
    for probe_name in PROBES:
        causes += _probe_causes(f"{path}.{probe_name}", c.get(probe_name) or {})
    return causes


def env_causes(path: str, env: list[Obj], *, relaxed: bool = False) -> list[Cause]:
    """Each variable named (IsEnvVarName, or IsRelaxedEnvVarName where `relaxed`)."""
    check = f.relaxed_env_var_name_errors if relaxed else f.env_var_name_errors
    causes: list[Cause] = []
    for i, var in enumerate(env):
        name = var.get("name", "")
        if not name:
            causes.append(Cause(f"{path}[{i}].name", "Required value", "FieldValueRequired"))
            continue
        causes += [Cause(f"{path}[{i}].name", f"Invalid value: {f.go_quote(name)}: {msg}") for msg in check(name)]
    return causes


def _container_ports_causes(path: str, ports: list[Obj]) -> list[Cause]:
    causes: list[Cause] = []
    port_names: set[str] = set()
    for j, p in enumerate(ports):
        ppath = f"{path}.ports[{j}]"
        causes += port_number_causes(f"{ppath}.containerPort", p.get("containerPort"))
        if p.get("hostPort"):
            causes += port_number_causes(f"{ppath}.hostPort", p["hostPort"])
        causes += protocol_causes(f"{ppath}.protocol", p.get("protocol", "TCP"))
        if p.get("name"):
            causes += _unique_name_causes(f"{ppath}.name", p["name"], port_names, f.port_name_errors)
    return causes


def _probe_causes(path: str, probe: Obj) -> list[Cause]:
    causes = []
    handlers = [h for h in PROBE_HANDLERS if probe.get(h)]
    if probe and len(handlers) != 1:
        causes.append(Cause(path, "Required value: must specify exactly one handler type",
                            "FieldValueRequired"))
    for h in ("httpGet", "tcpSocket"):
        if probe.get(h):
            causes += int_or_name_port_causes(f"{path}.{h}.port", probe[h].get("port"))
    return causes


# --- Node ----------------------------------------------------------------------------

def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    """kube's ValidateNode and ValidateNodeUpdate for the spec: the pod ranges are CIDRs, at
    most one per IP family, and once set they never change. (Whether a range fits the
    cluster's is the API server's allocator's question: `storage.allocations`.)"""
    cidrs = pod_cidrs(obj)
    causes = _pod_cidrs_causes(cidrs)
    if old is not None:
        old_cidrs = pod_cidrs(old)
        if old_cidrs and old_cidrs != cidrs:
            causes.append(Cause("spec.podCIDRs", 'Forbidden: node updates may not change podCIDR '
                                'except from "" to valid', "FieldValueForbidden"))
    return causes


def pod_cidrs(node: Obj) -> list[Any]:
    """spec.podCIDRs, or [spec.podCIDR] when only that is given (kube's v1 conversion)."""
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or []
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return list(cidrs)


def _go_strings(values: list[Any]) -> str:
    """A []string as Go's %#v prints it, which is how kube shows the whole list in a cause."""
    return "[]string{" + ", ".join(json.dumps(str(v), ensure_ascii=False) for v in values) + "}"


def _pod_cidrs_causes(cidrs: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    parsed = [nodenet.parse_cidr(c) for c in cidrs]
    for i, net in enumerate(parsed):
        if net is None:
            causes.append(Cause(f"spec.podCIDRs[{i}]", f"Invalid value: {_go_strings(cidrs)}: "
                                "must be valid CIDR"))
    if len(cidrs) > 1:
        families = {net.version for net in parsed if net is not None}
        if len(cidrs) > 2 or len(families) != 2:
            causes.append(Cause("spec.podCIDRs", f"Invalid value: {_go_strings(cidrs)}: may specify "
                                "no more than one CIDR for each IP family"))
        seen: set[Any] = set()
        for i, value in enumerate(cidrs):
            if value in seen:
                causes.append(Cause(f"spec.podCIDRs[{i}]", f"Duplicate value: {json.dumps(value)}",
                                    "FieldValueDuplicate"))
            seen.add(value)
    return causes


def validate_node_status(obj: Obj, old: Obj | None) -> list[Cause]:
    """The addresses a node reports: an InternalIP or ExternalIP is a plain IP address. kube
    takes any string there; here the API server dials the InternalIP and nodes route through
    it, so nothing else (a port, a path, a host name) is ever stored."""
    status = obj.get("status") or {}
    causes = []
    for i, addr in enumerate(status.get("addresses") or []):
        if addr.get("type") not in nodenet.NODE_ADDRESS_TYPES:
            continue
        value = addr.get("address")
        problem = nodenet.node_address_problem(value, None)
        if problem is not None:
            causes.append(Cause(f"status.addresses[{i}].address",
                                f"Invalid value: {json.dumps(value)}: {problem}"))
    return causes


# --- ConfigMap ------------------------------------------------------------------------

MAX_CONFIGMAP_BYTES = 1024 * 1024  # core.MaxSecretSize: a ConfigMap is held whole in etcd and memory


def validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateConfigMap (and, on an update, ValidateConfigMapUpdate's immutability first)."""
    causes = _immutable_configmap_causes(obj, old) if old is not None else []
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        causes += [Cause(f"data[{key}]", f'Invalid value: "{key}": {m}') for m in f.config_key_errors(key)]
        if key in binary:
            causes.append(Cause(f"data[{key}]", f'Invalid value: "{key}": duplicate of key present '
                                'in binaryData'))
        total += len(value.encode()) if isinstance(value, str) else 0
    for key, value in binary.items():
        causes += [Cause(f"binaryData[{key}]", f'Invalid value: "{key}": {m}')
                   for m in f.config_key_errors(key)]
        decoded = _base64_bytes(value)
        if decoded is None:
            causes.append(Cause(f"binaryData[{key}]", "Invalid value: illegal base64 data"))
        else:
            total += decoded
    if total > MAX_CONFIGMAP_BYTES:
        causes.append(Cause("", f"Too long: must have at most {MAX_CONFIGMAP_BYTES} bytes",
                            "FieldValueTooLong"))
    return causes


def _base64_bytes(value: Any) -> int | None:
    """How many bytes `value` decodes to as the JSON form of []byte (standard base64), or None."""
    if not isinstance(value, str):
        return None
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def _immutable_configmap_causes(obj: Obj, old: Obj) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes = []
    forbidden = "Forbidden: field is immutable when `immutable` is set"
    if obj.get("immutable") is not True:
        causes.append(Cause("immutable", forbidden, "FieldValueForbidden"))
    if (obj.get("data") or {}) != (old.get("data") or {}):
        causes.append(Cause("data", forbidden, "FieldValueForbidden"))
    if (obj.get("binaryData") or {}) != (old.get("binaryData") or {}):
        causes.append(Cause("binaryData", forbidden, "FieldValueForbidden"))
    return causes
