"""networking.k8s.io/v1 validation: NetworkPolicy (kube's ValidateNetworkPolicySpec and
ValidateNetworkPolicyUpdate). Enforcement is not here: these are the objects' rules only."""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj
from kubecore.api.validation.core import PROTOCOLS
from kubecore.api.validation.meta import label_selector_causes

POLICY_TYPES = ("Ingress", "Egress")
BAD_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_OCTET_ZEROS = re.compile(r"(?<![0-9A-Fa-f:])0+(?=[0-9])")


def parse_cidr_sloppy(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """k8s.io/utils/net's ParseCIDRSloppy: Go's ParseCIDR, but IPv4 octets may have leading
    zeros (read as decimal); host bits may be set."""
    addr, slash, bits = text.partition("/")
    if not slash or not bits.isascii() or not bits.isdigit() or "%" in addr:
        return None
    if "." in addr and ":" not in addr:
        addr = ".".join(_OCTET_ZEROS.sub("", octet) or "0" for octet in addr.split("."))
    try:
        return ipaddress.ip_network(f"{addr}/{int(bits)}", strict=False)
    except ValueError:
        return None


def _port_causes(port: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    proto, number, end = port.get("protocol"), port.get("port"), port.get("endPort")
    if proto is not None and proto not in PROTOCOLS:
        causes.append(Cause(f"{path}.protocol", f"Unsupported value: {f.go_quote(str(proto))}: "
                            'supported values: "TCP", "UDP", "SCTP"', "FieldValueNotSupported"))
    if isinstance(number, int):
        causes += [Cause(f"{path}.port", f"Invalid value: {number}: {m}") for m in f.port_number_errors(number)]
        if isinstance(end, int):
            if end < number:
                causes.append(Cause(f"{path}.endPort", f"Invalid value: {end}: must be greater than "
                                    "or equal to `port`"))
            causes += [Cause(f"{path}.endPort", f"Invalid value: {end}: {m}") for m in f.port_number_errors(end)]
    elif isinstance(number, str):
        if end is not None:
            causes.append(Cause(f"{path}.endPort", f"Invalid value: {end}: may not be specified "
                                "when `port` is non-numeric"))
        causes += [Cause(f"{path}.port", f"Invalid value: {f.go_quote(number)}: {m}")
                   for m in f.port_name_errors(number)]
    elif end is not None:
        causes.append(Cause(f"{path}.endPort", f"Invalid value: {end}: may not be specified when "
                            "`port` is not specified"))
    return causes


def _cidr_causes(value: Any, path: str, allowed: set[str]) -> list[Cause]:
    if value in allowed or parse_cidr_sloppy(str(value)) is not None:
        return []
    return [Cause(path, f"Invalid value: {f.go_quote(str(value))}: {BAD_CIDR}")]


def _ip_block_causes(block: Obj, path: str, allowed: set[str]) -> list[Cause]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [Cause(f"{path}.cidr", "Required value", "FieldValueRequired")]
    causes = _cidr_causes(cidr, f"{path}.cidr", allowed)
    outer = parse_cidr_sloppy(cidr)
    if outer is None:
        return causes
    for i, text in enumerate(block.get("except") or []):
        at = f"{path}.except[{i}]"
        bad = _cidr_causes(text, at, allowed)
        inner = parse_cidr_sloppy(str(text))
        causes += bad
        if inner is None:
            continue
        if (inner.version != outer.version or inner.network_address not in outer
                or outer.prefixlen >= inner.prefixlen):
            causes.append(Cause(at, f"Invalid value: {f.go_quote(str(text))}: must be a strict "
                                "subset of `cidr`"))
    return causes


def _peer_causes(peer: Obj, path: str, allowed: set[str]) -> list[Cause]:
    """ValidateNetworkPolicyPeer: each selector given, the ipBlock; exactly one kind of peer
    when it is an ipBlock, at least one always."""
    causes: list[Cause] = []
    given = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    for key in given:
        if key == "ipBlock":
            causes += _ip_block_causes(peer[key], f"{path}.ipBlock", allowed)
        else:
            causes += label_selector_causes(f"{path}.{key}", peer[key])
    if not given:
        causes.append(Cause(path, "Required value: must specify a peer", "FieldValueRequired"))
    elif len(given) > 1 and "ipBlock" in given:
        causes.append(Cause(path, "Forbidden: may not specify both ipBlock and another peer",
                            "FieldValueForbidden"))
    return causes


def _rules_causes(spec: Obj, direction: str, peers: str, allowed: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(spec.get(direction) or []):
        at = f"spec.{direction}[{i}]"
        for j, port in enumerate(rule.get("ports") or []):
            causes += _port_causes(port, f"{at}.ports[{j}]")
        for j, peer in enumerate(rule.get(peers) or []):
            causes += _peer_causes(peer, f"{at}.{peers}[{j}]", allowed)
    return causes


def _policy_types_causes(types: list[Any]) -> list[Cause]:
    if len(types) > len(POLICY_TYPES):
        listed = "[]networking.PolicyType{" + ", ".join(f'"{t}"' for t in types) + "}"
        return [Cause("spec.policyTypes", f"Invalid value: {listed}: may not specify more than "
                      "two policyTypes")]
    return [Cause(f"spec.policyTypes[{i}]", f"Unsupported value: {f.go_quote(str(t))}: supported "
                  'values: "Ingress", "Egress"', "FieldValueNotSupported")
            for i, t in enumerate(types) if t not in POLICY_TYPES]


def _old_cidrs(old: Obj | None) -> set[str]:
    """Every CIDR of the stored policy: an update may keep one that no longer validates."""
    spec = (old or {}).get("spec") or {}
    found: set[str] = set()
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(direction) or []:
            for peer in rule.get(peers) or []:
                block = peer.get("ipBlock") or {}
                found.update(str(c) for c in [block.get("cidr"), *(block.get("except") or [])] if c)
    return found


def validate_networkpolicy(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    allowed = _old_cidrs(old)
    causes = label_selector_causes("spec.podSelector", spec.get("podSelector") or {})
    causes += _rules_causes(spec, "ingress", "from", allowed)
    causes += _rules_causes(spec, "egress", "to", allowed)
    causes += _policy_types_causes(spec.get("policyTypes") or [])
    return causes
