"""discovery.k8s.io/v1 validation: EndpointSlice."""
from __future__ import annotations

from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj
from kubecore.api.validation.core import port_number_causes, protocol_causes

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
MAX_ENDPOINTS = 1000


def validate_endpointslice(obj: Obj, old: Obj | None) -> list[Cause]:
    at = obj.get("addressType")
    causes: list[Cause] = []
    if at not in ADDRESS_TYPES:
        causes.append(Cause("addressType", f'Unsupported value: "{at}": supported values: '
                            '"FQDN", "IPv4", "IPv6"', "FieldValueNotSupported"))
    causes += _endpoints_causes(obj.get("endpoints") or [], at)
    for i, p in enumerate(obj.get("ports") or []):
        if p.get("port") is not None:
            causes += port_number_causes(f"ports[{i}].port", p["port"])
        causes += protocol_causes(f"ports[{i}].protocol", p.get("protocol", "TCP"))
    if old is not None and old.get("addressType") != at:
        causes.append(Cause("addressType", f'Invalid value: "{at}": field is immutable'))
    return causes


def _endpoints_causes(endpoints: list[Obj], address_type: Any) -> list[Cause]:
    causes = []
    if len(endpoints) > MAX_ENDPOINTS:
        causes.append(Cause("endpoints", f"Too many: {len(endpoints)}: must have at most 1000 items",
                            "FieldValueTooMany"))
    for i, ep in enumerate(endpoints):
        addrs = ep.get("addresses") or []
        if len(addrs) != 1:
            causes.append(Cause(f"endpoints[{i}].addresses", "Required value: must contain exactly "
                                "one address", "FieldValueRequired"))
        causes += [Cause(f"endpoints[{i}].addresses[{j}]", f'Invalid value: "{a}": must be a valid IPv4 address')
                   for j, a in enumerate(addrs) if address_type == "IPv4" and f.ipv4_errors(a)]
        causes += _hostname_causes(f"endpoints[{i}].hostname", ep.get("hostname"))
    return causes


def _hostname_causes(path: str, hostname: str | None) -> list[Cause]:
    """The name DNS gives the endpoint (<hostname>.<service>.<ns>.svc, its SRV target): a DNS
    label, checked whenever set, even empty."""
    if hostname is None:
        return []
    return [Cause(path, f"Invalid value: {f.go_quote(hostname)}: {msg}")
            for msg in f.dns1123_label_errors(hostname)]
