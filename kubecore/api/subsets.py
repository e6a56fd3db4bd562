"""core/v1 Endpoints subsets in their canonical layout (kube's endpoints.RepackSubsets).

The same endpoints can be written many ways: one subset per address and port, or grouped;
an address listed twice; ready on one listing and not on another. kube-apiserver stores
Endpoints repacked (the Endpoints strategy's Canonicalize) and the endpoints controller
compares repacked subsets, so both do it here the same way:

- every (address, port) pair is collected, an address being the same one when its IP and
  targetRef uid are; not ready on any listing of a port makes it not ready on that port;
- addresses serving the same ports with the same readiness form one subset;
- a subset without ports (a headless Service's) keeps its addresses, portless;
- addresses are ordered as kube's LessEndpointAddress orders them (the IP as text, then
  the targetRef's uid); ports and subsets in a stable order of their own.
"""
from __future__ import annotations

import copy
from typing import Any

from kubecore.api.types import Obj

_NO_PORTS = ("", 0, "", "")  # the port "key" of a subset without ports
AddressKey = tuple[str, str]
PortKey = tuple[str, int, str, str]


def _address_key(address: Obj) -> AddressKey:
    ref = address.get("targetRef")
    return (str(address.get("ip") or ""), str(ref.get("uid") or "") if isinstance(ref, dict) else "")


def _port_key(port: Obj) -> PortKey:
    number = port.get("port")
    return (str(port.get("name") or ""), number if isinstance(number, int) else 0,
            str(port.get("protocol") or ""), str(port.get("appProtocol") or ""))


def address_order(address: Obj) -> tuple[str, bool, str]:
    """LessEndpointAddress: by IP as text, an address without targetRef first, then uid."""
    ref = address.get("targetRef")
    if not isinstance(ref, dict):
        return (str(address.get("ip") or ""), False, "")
    return (str(address.get("ip") or ""), True, str(ref.get("uid") or ""))


def _collect(subsets: list[Any]) -> tuple[dict[AddressKey, Obj], dict[PortKey, dict[AddressKey, bool]]]:
    addresses: dict[AddressKey, Obj] = {}
    by_port: dict[PortKey, dict[AddressKey, bool]] = {}
    for subset in subsets:
        if not isinstance(subset, dict):
            continue
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        port_keys = [_port_key(p) for p in ports] or [_NO_PORTS]
        listed = [(a, True) for a in subset.get("addresses") or []]
        listed += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in listed:
            if not isinstance(address, dict):
                continue
            key = _address_key(address)
            addresses.setdefault(key, address)
            for port in port_keys:
                seen = by_port.setdefault(port, {})
                seen[key] = seen.get(key, True) and ready  # not ready trumps ready
    return addresses, by_port


def _port_to_api(port: PortKey) -> Obj:
    name, number, protocol, app_protocol = port
    out: Obj = {"port": number, "protocol": protocol}
    if name:
        out["name"] = name
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def repack_subsets(subsets: list[Any]) -> list[Obj]:
    """The canonical subsets holding exactly the (address, port, readiness) of `subsets`."""
    addresses, by_port = _collect(subsets)
    groups: dict[tuple[tuple[AddressKey, bool], ...], list[PortKey]] = {}
    for port, seen in by_port.items():
        groups.setdefault(tuple(sorted(seen.items())), []).append(port)
    out = []
    for members, ports in groups.items():
        subset: Obj = {}
        ready = sorted((copy.deepcopy(addresses[k]) for k, r in members if r), key=address_order)
        not_ready = sorted((copy.deepcopy(addresses[k]) for k, r in members if not r), key=address_order)
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        api_ports = [_port_to_api(p) for p in sorted(ports) if p != _NO_PORTS]
        if api_ports:
            subset["ports"] = api_ports
        out.append(subset)
    return sorted(out, key=_subset_order)


def _subset_order(subset: Obj) -> tuple[Any, ...]:
    ports = [_port_key(p) for p in subset.get("ports") or []]
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    return (ports, address_order(first))


def canonicalize_endpoints(obj: Obj) -> None:
    """The Endpoints strategy's Canonicalize: the subsets repacked, after validation."""
    if isinstance(obj.get("subsets"), list):
        obj["subsets"] = repack_subsets(obj["subsets"])
        if not obj["subsets"]:
            del obj["subsets"]
