"""core/v1 Endpoints validation, as kube's ValidateEndpoints (pkg/apis/core/validation).

Endpoints are written by the endpoints controller for Services with a selector and by
users for Services without one, and the proxies of other clusters' tools still read
them; so an address must be a plain, routable IP: kube refuses the unspecified address,
loopback and link-local ranges (ValidateNonSpecialIP), since an endpoint there would
steer a Service's traffic at the node itself. Kept apart from `core` (Service, Pod,
Node) as its own small module; the rules read the same.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj

PROTOCOLS = ("SCTP", "TCP", "UDP")


def validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    """Every subset has an address; every address and port is well formed."""
    causes: list[Cause] = []
    for i, subset in enumerate(_dicts(obj.get("subsets"))):
        path = f"subsets[{i}]"
        addresses = _dicts(subset.get("addresses"))
        not_ready = _dicts(subset.get("notReadyAddresses"))
        if not addresses and not not_ready:
            causes.append(Cause(path, "Required value: must specify `addresses` or "
                                "`notReadyAddresses`", "FieldValueRequired"))
        for j, address in enumerate(addresses):
            causes += address_causes(f"{path}.addresses[{j}]", address)
        for j, address in enumerate(not_ready):
            causes += address_causes(f"{path}.notReadyAddresses[{j}]", address)
        ports = _dicts(subset.get("ports"))
        for j, port in enumerate(ports):
            causes += _port_causes(f"{path}.ports[{j}]", port, require_name=len(ports) > 1)
    return causes


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def address_causes(path: str, address: Obj) -> list[Cause]:
    """validateEndpointAddress: the IP, the hostname (a DNS label), the node's name; the
    special ranges only once the rest is sound."""
    ip = str(address.get("ip") or "")
    causes = [Cause(f"{path}.ip", f"Invalid value: {f.go_quote(ip)}: {msg}") for msg in f.ip_errors(ip)]
    hostname = address.get("hostname")
    if hostname:
        causes += [Cause(f"{path}.hostname", f"Invalid value: {f.go_quote(hostname)}: {msg}")
                   for msg in f.dns1123_label_errors(hostname)]
    node_name = address.get("nodeName")
    if node_name is not None:
        causes += [Cause(f"{path}.nodeName", f"Invalid value: {f.go_quote(node_name)}: {msg}")
                   for msg in f.dns1123_subdomain_errors(node_name)]
    if causes:
        return causes
    return [Cause(f"{path}.ip", f"Invalid value: {f.go_quote(ip)}: {msg}") for msg in special_ip_errors(ip)]


def special_ip_errors(ip: str) -> list[str]:
    """ValidateNonSpecialIP's messages: addresses no Service may send traffic to."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ["must be a valid IP address"]
    out = []
    if addr.is_unspecified:
        out.append(f"may not be unspecified ({ip})")
    if addr.is_loopback:
        out.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if addr.is_link_local and not addr.is_multicast:
        out.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if addr in ipaddress.ip_network("224.0.0.0/24") or addr in ipaddress.ip_network("ff02::/16"):
        out.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return out


def _port_causes(path: str, port: Obj, *, require_name: bool) -> list[Cause]:
    """validateEndpointPort: a name when there are several ports, a valid number, a
    supported protocol, an appProtocol that is a qualified name."""
    causes: list[Cause] = []
    name = port.get("name") or ""
    if require_name and not name:
        causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
    elif name:
        causes += [Cause(f"{path}.name", f"Invalid value: {f.go_quote(name)}: {msg}")
                   for msg in f.dns1123_label_errors(name)]
    number = port.get("port")
    causes += [Cause(f"{path}.port", f"Invalid value: {number}: {msg}")
               for msg in f.port_number_errors(number)]
    protocol = port.get("protocol") or ""
    if not protocol:
        causes.append(Cause(f"{path}.protocol", "Required value", "FieldValueRequired"))
    elif protocol not in PROTOCOLS:
        causes.append(Cause(f"{path}.protocol", f"Unsupported value: {f.go_quote(protocol)}: "
                            'supported values: "SCTP", "TCP", "UDP"', "FieldValueNotSupported"))
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        causes += [Cause(f"{path}.appProtocol", f"Invalid value: {f.go_quote(app_protocol)}: {msg}")
                   for msg in f.qualified_name_errors(app_protocol)]
    return causes
