"""core/v1 Service validation: kube's ValidateService, ValidateServiceUpdate and
ValidateServiceStatusUpdate (pkg/apis/core/validation), in their order and words.

One difference in timing, not in outcome: kube-apiserver allocates a Service's cluster IP,
node ports and health check node port before it validates, here the allocations come after
(in the same etcd transaction as the write). So the rules read `clusterIPs` as kube's
strategy would have filled it from `clusterIP`, and a missing `healthCheckNodePort` is not
"Required": the allocation always fills it.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from kubecore.api import formats as f
from kubecore.api import servicespec as S
from kubecore.api.errors import Cause
from kubecore.api.types import Obj
from kubecore.api.validation.core import int_or_name_port_causes, port_number_causes, protocol_causes
from kubecore.api.validation.meta import label_map_causes

INVALID, REQUIRED, FORBIDDEN = "FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"
UNSUPPORTED, DUPLICATE = "FieldValueNotSupported", "FieldValueDuplicate"
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400  # core.MaxClientIPServiceAffinitySeconds: a day


def _supported(path: str, value: Any, allowed: tuple[str, ...]) -> Cause:
    shown = f.go_quote(value) if isinstance(value, str) else "null" if value is None else str(value)
    return Cause(path, f"Unsupported value: {shown}: supported values: "
                 + ", ".join(f'"{a}"' for a in allowed), UNSUPPORTED)


def _go_strings(values: list[Any]) -> str:
    """A []string as %#v prints it, how kube shows a list in an "Invalid value" message."""
    return "[]string{" + ", ".join(f.go_quote(str(v)) for v in values) + "}"


def cluster_ips(spec: Obj) -> list[Any]:
    """spec.clusterIPs as kube's strategy normalizes it: from clusterIP when only that is given."""
    ips = spec.get("clusterIPs")
    if ips:
        return list(ips)
    return [spec["clusterIP"]] if spec.get("clusterIP") else []


def is_headless(spec: Obj) -> bool:
    return cluster_ips(spec) == ["None"]


# --- ValidateService ---------------------------------------------------------------------

def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    if old is not None:
        causes += _update_causes(obj, old)
    stype = spec.get("type", "ClusterIP")
    if not spec.get("ports") and not is_headless(spec) and stype != S.EXTERNAL_NAME:
        causes.append(Cause("spec.ports", "Required value", REQUIRED))
    causes += _type_causes(spec, stype)
    causes += _ports_causes(spec.get("ports") or [])
    causes += label_map_causes("spec.selector", spec.get("selector"))
    causes += _session_affinity_causes(spec)
    causes += _cluster_ips_causes(spec, stype)
    causes += _external_ips_causes(spec.get("externalIPs") or [])
    if not stype:
        causes.append(Cause("spec.type", "Required value", REQUIRED))
    elif stype not in S.TYPES:
        causes.append(_supported("spec.type", stype, S.TYPES))
    causes += _node_port_causes(spec, stype)
    causes += _duplicate_port_causes(spec.get("ports") or [])
    causes += _load_balancer_causes(obj, stype)
    causes += _traffic_policy_causes(obj)
    return causes


def _type_causes(spec: Obj, stype: Any) -> list[Cause]:
    if stype in (S.LOAD_BALANCER, S.NODE_PORT):
        if is_headless(spec):
            return [Cause("spec.clusterIPs[0]", f"Invalid value: \"None\": may not be set to 'None' "
                          f"for {stype} services")]
        return []
    if stype != S.EXTERNAL_NAME:
        return []
    causes = []
    for key, present in (("clusterIPs", bool(cluster_ips(spec))),
                         ("ipFamilies", bool(spec.get("ipFamilies"))),
                         ("ipFamilyPolicy", spec.get("ipFamilyPolicy") is not None)):
        if present:
            causes.append(Cause(f"spec.{key}", "Forbidden: may not be set for ExternalName services",
                                FORBIDDEN))
    name = spec.get("externalName") or ""
    cname = name[:-1] if isinstance(name, str) and name.endswith(".") else name
    if not cname:
        causes.append(Cause("spec.externalName", "Required value", REQUIRED))
    else:
        causes += [Cause("spec.externalName", f"Invalid value: {f.go_quote(cname)}: {m}")
                   for m in f.dns1123_subdomain_errors(cname)]
    return causes


def _ports_causes(ports: list[Obj]) -> list[Cause]:
    """validateServicePort for each port: names (required once there are several, DNS labels,
    unique), port, protocol, targetPort, appProtocol."""
    causes = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if not name and len(ports) > 1:
            causes.append(Cause(f"{path}.name", "Required value", REQUIRED))
        elif name:
            causes += [Cause(f"{path}.name", f"Invalid value: {f.go_quote(name)}: {m}")
                       for m in f.dns1123_label_errors(name)]
            if name in seen:
                causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"', DUPLICATE))
            seen.add(name)
        causes += port_number_causes(f"{path}.port", port.get("port"))
        causes += protocol_causes(f"{path}.protocol", port.get("protocol", "TCP"))
        if "targetPort" in port:
            causes += int_or_name_port_causes(f"{path}.targetPort", port["targetPort"])
        app = port.get("appProtocol")
        if app is not None:
            causes += [Cause(f"{path}.appProtocol", f"Invalid value: {f.go_quote(app)}: {m}")
                       for m in f.qualified_name_errors(app)]
    return causes


def _session_affinity_causes(spec: Obj) -> list[Cause]:
    affinity = spec.get("sessionAffinity")
    path = "spec.sessionAffinityConfig"
    if not affinity:
        return [Cause("spec.sessionAffinity", "Required value", REQUIRED)]
    if affinity == "None":
        if spec.get("sessionAffinityConfig") is not None:
            return [Cause(path, "Forbidden: must not be set when session affinity is None", FORBIDDEN)]
        return []
    if affinity != "ClientIP":
        return [_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))]
    config = spec.get("sessionAffinityConfig")
    required = "Required value: when session affinity type is ClientIP"
    if config is None:
        return [Cause(path, required, REQUIRED)]
    if config.get("clientIP") is None:
        return [Cause(f"{path}.clientIP", required, REQUIRED)]
    timeout = config["clientIP"].get("timeoutSeconds")
    if timeout is None:
        return [Cause(f"{path}.clientIP.timeoutSeconds", required, REQUIRED)]
    if not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
        return [Cause(f"{path}.clientIP.timeoutSeconds", f"Invalid value: {timeout}: must be greater "
                      f"than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}")]
    return []


def _cluster_ips_causes(spec: Obj, stype: Any) -> list[Cause]:
    """ValidateServiceClusterIPsRelatedFields (single-stack: one family, IPv4)."""
    if stype == S.EXTERNAL_NAME:
        return []
    causes = []
    ips = cluster_ips(spec)
    given = spec.get("clusterIPs")
    if spec.get("clusterIP") and given and given[0] != spec["clusterIP"]:
        causes.append(Cause("spec.clusterIPs", f"Invalid value: {_go_strings(given)}: first value "
                            "must match `clusterIP`"))
    elif not spec.get("clusterIP") and given:
        causes.append(Cause("spec.clusterIPs", f"Invalid value: {_go_strings(given)}: must be empty "
                            "when `clusterIP` is not specified"))
    seen: set[Any] = set()
    for i, family in enumerate(spec.get("ipFamilies") or []):
        if family not in ("IPv4", "IPv6"):
            causes.append(_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in seen:
            causes.append(Cause(f"spec.ipFamilies[{i}]", f"Duplicate value: {f.go_quote(family)}",
                                DUPLICATE))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        causes.append(_supported("spec.ipFamilyPolicy", policy,
                                 ("PreferDualStack", "RequireDualStack", "SingleStack")))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                causes.append(Cause("spec.clusterIPs", f"Invalid value: {_go_strings(ips)}: 'None' must "
                                    "be the first and only value"))
            continue
        causes += [Cause(f"spec.clusterIPs[{i}]", f"Invalid value: {f.go_quote(str(ip))}: {m}")
                   for m in f.ip_errors(str(ip))]
    if len(ips) > 2:
        causes.append(Cause("spec.clusterIPs", f"Invalid value: {_go_strings(ips)}: may only hold up "
                            "to 2 values"))
    return causes


def non_special_ip_errors(value: str) -> list[str]:
    """ValidateNonSpecialIP: addresses a Service may not claim for outside traffic."""
    ip = ipaddress.ip_address(value)
    errors = []
    if ip.is_unspecified:
        errors.append("may not be unspecified (0.0.0.0)")
    if ip.is_loopback:
        errors.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local and not ip.is_multicast:
        errors.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if ip in ipaddress.ip_network("224.0.0.0/24") or (ip.version == 6 and ip in ipaddress.ip_network("ff02::/16")):
        errors.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return errors


def _external_ips_causes(ips: list[Any]) -> list[Cause]:
    causes = []
    for i, ip in enumerate(ips):
        path = f"spec.externalIPs[{i}]"
        messages = f.ip_errors(ip) or non_special_ip_errors(ip)
        causes += [Cause(path, f"Invalid value: {f.go_quote(ip)}: {m}") for m in messages]
    return causes


def _node_port_causes(spec: Obj, stype: Any) -> list[Cause]:
    """nodePort is forbidden on a ClusterIP Service; no two ports share (protocol, nodePort)."""
    causes = []
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(spec.get("ports") or []):
        if stype == S.CLUSTER_IP and port.get("nodePort"):
            causes.append(Cause(f"spec.ports[{i}].nodePort", "Forbidden: may not be used when `type` "
                                "is 'ClusterIP'", FORBIDDEN))
    for i, port in enumerate(spec.get("ports") or []):
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol", "TCP"), port["nodePort"])
        if key in seen:
            causes.append(Cause(f"spec.ports[{i}].nodePort", f"Duplicate value: {key[1]}", DUPLICATE))
        seen.add(key)
    return causes


def _duplicate_port_causes(ports: list[Obj]) -> list[Cause]:
    """Ports are unique by (port, protocol): 53/UDP and 53/TCP may both be served."""
    causes = []
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        key = (port.get("port"), port.get("protocol", "TCP"))
        if key in seen:
            causes.append(Cause(f"spec.ports[{i}]", f'Duplicate value: {{"port": {key[0]}, '
                                f'"protocol": "{key[1]}"}}', DUPLICATE))
        seen.add(key)
    return causes


def _load_balancer_causes(obj: Obj, stype: Any) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = []
    only_lb = "Forbidden: may only be used when `type` is 'LoadBalancer'"
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != S.LOAD_BALANCER:
        causes.append(Cause("spec.allocateLoadBalancerNodePorts", only_lb, FORBIDDEN))
    if stype == S.LOAD_BALANCER and spec.get("allocateLoadBalancerNodePorts") is None:
        causes.append(Cause("allocateLoadBalancerNodePorts", "Required value", REQUIRED))
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None and stype == S.LOAD_BALANCER:
        causes += [Cause("spec.loadBalancerClass", f"Invalid value: {f.go_quote(lb_class)}: {m}")
                   for m in f.qualified_name_errors(lb_class)]
    elif lb_class is not None:
        causes.append(Cause("spec.loadBalancerClass", only_lb, FORBIDDEN))
    return causes


def _traffic_policy_causes(obj: Obj) -> list[Cause]:
    """validateServiceExternalTrafficPolicy and validateServiceInternalTrafficFieldsValue."""
    spec = obj.get("spec") or {}
    causes = []
    policy = spec.get("externalTrafficPolicy")
    if not S.externally_accessible(obj):
        if policy:
            causes.append(Cause("spec.externalTrafficPolicy", f"Invalid value: {f.go_quote(policy)}: "
                                "may only be set for externally-accessible services"))
    elif not policy:
        causes.append(Cause("spec.externalTrafficPolicy", "Required value", REQUIRED))
    elif policy not in ("Cluster", "Local"):
        causes.append(_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local")))
    hc = spec.get("healthCheckNodePort")
    if not S.needs_health_check_node_port(obj):
        if hc:
            causes.append(Cause("spec.healthCheckNodePort", f"Invalid value: {hc}: may only be set when "
                                "`type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    elif hc:
        causes += port_number_causes("spec.healthCheckNodePort", hc)
    internal = spec.get("internalTrafficPolicy")
    if internal is None and spec.get("type", "ClusterIP") in (S.CLUSTER_IP, S.NODE_PORT, S.LOAD_BALANCER):
        causes.append(Cause("spec.internalTrafficPolicy", "Required value", REQUIRED))
    elif internal is not None and internal not in ("Cluster", "Local"):
        causes.append(_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local")))
    return causes


# --- ValidateServiceUpdate -----------------------------------------------------------------

def _update_causes(obj: Obj, old: Obj) -> list[Cause]:
    """What an update may not change: the cluster IPs (unless to or from ExternalName), the
    loadBalancerClass of a LoadBalancer, a needed healthCheckNodePort."""
    spec, ospec = obj.get("spec") or {}, old.get("spec") or {}
    causes = []
    if S.EXTERNAL_NAME not in (S.service_type(obj), S.service_type(old)) \
            and not (is_headless(spec) and is_headless(ospec)):
        new_ips, old_ips = cluster_ips(spec), cluster_ips(ospec)
        if old_ips and not new_ips:
            causes.append(Cause("spec.clusterIPs[0]", f"Invalid value: {_go_strings(new_ips)}: primary "
                                "clusterIP can not be unset"))
        elif old_ips and new_ips[0] != old_ips[0]:
            causes.append(Cause("spec.clusterIPs[0]", f"Invalid value: {_go_strings(new_ips)}: may not "
                                "change once set"))
    if S.service_type(obj) == S.service_type(old) == S.LOAD_BALANCER \
            and spec.get("loadBalancerClass") != ospec.get("loadBalancerClass"):
        value = spec.get("loadBalancerClass")
        shown = "null" if value is None else f.go_quote(str(value))
        causes.append(Cause("spec.loadBalancerClass", f"Invalid value: {shown}: may not change once set"))
    if S.needs_health_check_node_port(obj) and S.needs_health_check_node_port(old) \
            and spec.get("healthCheckNodePort") != ospec.get("healthCheckNodePort"):
        causes.append(Cause("spec.healthCheckNodePort", "Forbidden: field is immutable", FORBIDDEN))
    return causes


# --- ValidateServiceStatusUpdate -----------------------------------------------------------

def validate_service_status(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateLoadBalancerStatus: ingress only on a LoadBalancer; IPs valid and with an
    ipMode (VIP or Proxy); hostnames DNS names, not IPs."""
    status = obj.get("status") or {}
    lb = status.get("loadBalancer") or {}
    ingress = lb.get("ingress") or []
    path = "status.loadBalancer.ingress"
    if ingress and S.service_type(obj) != S.LOAD_BALANCER:
        return [Cause(path, "Forbidden: may only be used when `spec.type` is 'LoadBalancer'", FORBIDDEN)]
    causes = []
    for i, entry in enumerate(ingress):
        causes += _ingress_causes(f"{path}[{i}]", entry)
    return causes


def _ingress_causes(path: str, entry: Obj) -> list[Cause]:
    causes = []
    ip, mode, hostname = entry.get("ip") or "", entry.get("ipMode"), entry.get("hostname") or ""
    if ip:
        causes += [Cause(f"{path}.ip", f"Invalid value: {f.go_quote(ip)}: {m}") for m in f.ip_errors(ip)]
    if mode is None and ip:
        causes.append(Cause(f"{path}.ipMode", "Required value: must be specified when `ip` is set",
                            REQUIRED))
    elif mode is not None and not ip:
        causes.append(Cause(f"{path}.ipMode", "Forbidden: may not be specified when `ip` is not set",
                            FORBIDDEN))
    elif mode is not None and mode not in ("Proxy", "VIP"):
        causes.append(_supported(f"{path}.ipMode", mode, ("Proxy", "VIP")))
    if hostname:
        causes += [Cause(f"{path}.hostname", f"Invalid value: {f.go_quote(hostname)}: {m}")
                   for m in f.dns1123_subdomain_errors(hostname)]
        if not f.ip_errors(hostname):
            causes.append(Cause(f"{path}.hostname", f"Invalid value: {f.go_quote(hostname)}: must be a "
                                "DNS name, not an IP address"))
    return causes
