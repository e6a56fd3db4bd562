"""Slim, immutable view of Services and EndpointSlices, as the proxy needs it.

The informer hands us whole API objects (plain JSON dicts).  The rule renderer
must not care about API shapes, defaults or missing fields, and two syncs with
the same cluster state must produce byte-identical rules.  So everything is
converted once, here, into sorted frozen records: one `ServicePort` per
(service, port) with the endpoints that back it.

Conventions followed from kube-proxy:
- a service port is identified by `namespace/name:portName` (`namespace/name`
  when the port is unnamed); that string feeds the chain-name hashes;
- headless (`clusterIP: None`), IP-less and ExternalName services are skipped;
- externalIPs and load-balancer ingress IPs (ipMode VIP) are kept per service port;
- EndpointSlice conditions: a nil `ready` means ready, a nil `serving` means
  "same as ready", a nil `terminating` means not terminating;
- only the first address of an endpoint is used (addresses are fungible);
- only IPv4 slices are used (this proxy programs `iptables`, not `ip6tables`).
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
SUPPORTED_PROTOCOLS: Final = frozenset({"TCP", "UDP", "SCTP"})

JsonDict = Mapping[str, Any]


@dataclass(frozen=True, slots=True, order=True)
class ServicePortName:
    """`namespace/name:port` - the identity kube-proxy hashes into chain names."""

    namespace: str
    name: str
    port: str

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One backend address of one service port, with the conditions that decide its use."""

    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    is_local: bool

    @property
    def address(self) -> str:
        """`ip:port`, the string kube-proxy uses in comments and SEP hashes."""
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """A proxied (clusterIP, port, protocol) and its backends."""

    name: ServicePortName
    cluster_ip: str
    port: int
    protocol: str
    node_port: int | None
    endpoints: tuple[Endpoint, ...]
    # addresses outside the cluster the service answers on: spec.externalIPs, and the
    # load balancer's ingress IPs of status.loadBalancer (those with ipMode VIP or none)
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    # traffic policies, as kube-proxy's BaseServicePortInfo: externalTrafficPolicy Local (only
    # set when the service is externally accessible), internalTrafficPolicy Local, and
    # sessionAffinity ClientIP's timeout in seconds (None: no affinity)
    external_policy_local: bool = False
    internal_policy_local: bool = False
    affinity_seconds: int | None = None
    health_check_node_port: int | None = None
    load_balancer_source_ranges: tuple[str, ...] = ()

    @property
    def externally_accessible(self) -> bool:
        """Reachable from outside the cluster: a node port, an external or a load-balancer IP."""
        return self.node_port is not None or bool(self.external_ips) or bool(self.load_balancer_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        """kube-proxy's UsesClusterEndpoints: some traffic goes to endpoints on any node. An
        externally accessible service always does: even with externalTrafficPolicy Local, pod
        and node traffic to its external addresses is short-circuited to the Cluster policy."""
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        """kube-proxy's UsesLocalEndpoints: some traffic goes only to this node's endpoints."""
        return self.internal_policy_local or (self.external_policy_local and self.externally_accessible)

    def usable_endpoints(self) -> tuple[Endpoint, ...]:
        """Endpoints that may receive new connections.

        Ready endpoints if there are any; otherwise, like kube-proxy's
        ProxyTerminatingEndpoints behaviour, endpoints that are still serving
        while terminating, so a rolling update of the last pod does not turn
        into refused connections.
        """
        ready = tuple(ep for ep in self.endpoints if ep.ready)
        if ready:
            return ready
        return tuple(ep for ep in self.endpoints if ep.serving and ep.terminating)


@dataclass(frozen=True, slots=True)
class EndpointCategories:
    """kube-proxy's CategorizeEndpoints for one service port on this node.

    - `cluster`: endpoints for Cluster-policy traffic (ready ones, else serving-terminating
      ones); empty when no traffic uses the Cluster policy;
    - `local`: this node's endpoints for Local-policy traffic (ready ones, else its
      serving-terminating ones); empty when no traffic uses the Local policy;
    - `reachable`: every endpoint this node may send to (the union, in endpoint order);
    - `has_any`: whether the service has a usable endpoint anywhere in the cluster (true even
      when `reachable` is empty because the only ones are on other nodes).
    """

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...]
    has_any: bool


def categorize_endpoints(sp: ServicePort) -> EndpointCategories:
    """Split a service port's endpoints by traffic policy (no topology hints here)."""
    cluster: tuple[Endpoint, ...] = ()
    if sp.uses_cluster_endpoints:
        cluster = sp.usable_endpoints()
    if not sp.uses_local_endpoints:
        return EndpointCategories(cluster, (), cluster, bool(cluster))
    has_any = any(ep.ready or (ep.serving and ep.terminating) for ep in sp.endpoints)
    local = tuple(ep for ep in sp.endpoints if ep.is_local and ep.ready)
    terminating_fallback = False
    if not local:
        local = tuple(ep for ep in sp.endpoints if ep.is_local and ep.serving and ep.terminating)
        terminating_fallback = bool(local)
    if not sp.uses_cluster_endpoints:
        return EndpointCategories((), local, local, has_any)
    if not terminating_fallback:
        # local holds only ready endpoints, all of which are in cluster already
        return EndpointCategories(cluster, local, cluster, has_any)
    union = {ep.address: ep for ep in (*cluster, *local)}
    return EndpointCategories(cluster, local, tuple(sorted(union.values(), key=_endpoint_sort_key)), has_any)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one sync needs, sorted by service port name then protocol."""

    service_ports: tuple[ServicePort, ...]

    def by_key(self) -> dict[tuple[ServicePortName, str], ServicePort]:
        """Index by (name, protocol): two ports may share a name only across protocols."""
        return {(sp.name, sp.protocol): sp for sp in self.service_ports}


def build_snapshot(
    services: Iterable[JsonDict],
    endpoint_slices: Iterable[JsonDict],
    *,
    node_name: str,
) -> Snapshot:
    """Join Services with their EndpointSlices into a deterministic snapshot.

    Input order does not matter; malformed or unsupported entries are skipped
    rather than failing the whole sync, since one bad object must not stop
    the proxy from programming every other service.
    """
    slices_by_service = _slices_by_service(endpoint_slices)
    ports: list[ServicePort] = []
    for svc in services:
        ports.extend(_service_ports(svc, slices_by_service, node_name))
    ports.sort(key=lambda sp: (str(sp.name), sp.protocol))
    return Snapshot(service_ports=tuple(ports))


ServiceKey = tuple[str, str]  # (namespace, name)


def _object_key(obj: JsonDict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "default", meta.get("name") or "")


class ServiceIndex:
    """Services and their EndpointSlices, grouped by service, with each service's ports
    recomputed only after it or one of its slices changed.

    The proxy's event handlers feed it; a sync then reads `ports()` (every service's ports,
    cheap when little changed) and `take_changed()` (the services changed since the last
    take), which is what lets the nftables mode rewrite only what changed.
    """

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.services: dict[ServiceKey, JsonDict] = {}
        self._slices: dict[ServiceKey, dict[str, JsonDict]] = {}
        self._slice_owner: dict[tuple[str, str], ServiceKey] = {}
        self._ports: dict[ServiceKey, tuple[ServicePort, ...]] = {}
        self._dirty: set[ServiceKey] = set()
        self._changed: set[ServiceKey] = set()

    def set_service(self, obj: JsonDict) -> None:
        key = _object_key(obj)
        self.services[key] = obj
        self._mark(key)

    def delete_service(self, obj: JsonDict) -> None:
        key = _object_key(obj)
        self.services.pop(key, None)
        self._mark(key)

    def set_slice(self, obj: JsonDict) -> None:
        self.delete_slice(obj)
        meta = obj.get("metadata") or {}
        service_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service_name or obj.get("addressType", "IPv4") != "IPv4":
            return
        slice_key = _object_key(obj)
        owner = (slice_key[0], service_name)
        self._slice_owner[slice_key] = owner
        self._slices.setdefault(owner, {})[slice_key[1]] = obj
        self._mark(owner)

    def delete_slice(self, obj: JsonDict) -> None:
        slice_key = _object_key(obj)
        owner = self._slice_owner.pop(slice_key, None)
        if owner is None:
            return
        slices = self._slices.get(owner, {})
        slices.pop(slice_key[1], None)
        if not slices:
            self._slices.pop(owner, None)
        self._mark(owner)

    def _mark(self, key: ServiceKey) -> None:
        self._dirty.add(key)
        self._changed.add(key)

    def ports(self) -> dict[ServiceKey, tuple[ServicePort, ...]]:
        """Every service's proxied ports (services without any are left out)."""
        for key in self._dirty:
            svc = self.services.get(key)
            slices = {key: list(self._slices.get(key, {}).values())}
            ports = tuple(_service_ports(svc, slices, self.node_name)) if svc is not None else ()
            if ports:
                self._ports[key] = ports
            else:
                self._ports.pop(key, None)
        self._dirty.clear()
        return self._ports

    def mark_changed(self, keys: Iterable[ServiceKey]) -> None:
        """Hand back services a failed sync took but did not program."""
        self._changed.update(keys)

    def take_changed(self) -> set[ServiceKey]:
        """The services changed since the last call (the set is handed over and reset)."""
        changed, self._changed = self._changed, set()
        return changed

    def snapshot(self) -> Snapshot:
        ports = [sp for group in self.ports().values() for sp in group]
        ports.sort(key=lambda sp: (str(sp.name), sp.protocol))
        return Snapshot(service_ports=tuple(ports))


def _slices_by_service(endpoint_slices: Iterable[JsonDict]) -> dict[tuple[str, str], list[JsonDict]]:
    """IPv4 slices grouped by (namespace, service name); unlabelled slices are dropped."""
    slices_by_service: dict[tuple[str, str], list[JsonDict]] = {}
    for eps in endpoint_slices:
        meta = eps.get("metadata") or {}
        service_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service_name or eps.get("addressType", "IPv4") != "IPv4":
            continue
        key = (meta.get("namespace") or "default", service_name)
        slices_by_service.setdefault(key, []).append(eps)
    return slices_by_service


def _service_ports(
    svc: JsonDict, slices_by_service: Mapping[tuple[str, str], list[JsonDict]], node_name: str
) -> list[ServicePort]:
    """The proxied ports of one Service (none for headless, IP-less or ExternalName ones)."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
    cluster_ip = spec.get("clusterIP") or ""
    if not name or spec.get("type") == "ExternalName" or not _is_ipv4(cluster_ip):
        return []
    slices = sorted(
        slices_by_service.get((namespace, name), ()),
        key=lambda s: (s.get("metadata") or {}).get("name") or "",
    )
    has_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    external_ips = _ipv4s(spec.get("externalIPs"))
    lb_ips = load_balancer_vips(svc)
    policies = _policies(spec, has_node_ports or bool(external_ips))
    ports: list[ServicePort] = []
    for raw_port in spec.get("ports") or ():
        protocol = raw_port.get("protocol") or "TCP"
        port = raw_port.get("port")
        if protocol not in SUPPORTED_PROTOCOLS or not isinstance(port, int):
            continue
        port_name = raw_port.get("name") or ""
        node_port = raw_port.get("nodePort") if has_node_ports else None
        ports.append(
            ServicePort(
                name=ServicePortName(namespace, name, port_name),
                cluster_ip=cluster_ip,
                port=port,
                protocol=protocol,
                node_port=_valid_node_port(node_port),
                endpoints=_endpoints_for(slices, port_name, protocol, node_name),
                external_ips=external_ips,
                load_balancer_ips=lb_ips,
                **policies,
            )
        )
    return ports


DEFAULT_AFFINITY_SECONDS: Final = 10800  # kube's DefaultClientIPServiceAffinitySeconds


def _policies(spec: JsonDict, externally_accessible: bool) -> dict[str, Any]:
    """The traffic-policy fields of every port of one Service (kube-proxy's newBaseServiceInfo)."""
    external_local = externally_accessible and spec.get("externalTrafficPolicy") == "Local"
    affinity: int | None = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        timeout = config.get("timeoutSeconds") if isinstance(config, Mapping) else None
        affinity = timeout if isinstance(timeout, int) and timeout > 0 else DEFAULT_AFFINITY_SECONDS
    health = spec.get("healthCheckNodePort")
    return {
        "external_policy_local": external_local,
        "internal_policy_local": spec.get("internalTrafficPolicy") == "Local",
        "affinity_seconds": affinity,
        "health_check_node_port": health if external_local and isinstance(health, int) and health > 0 else None,
        "load_balancer_source_ranges": _source_ranges(spec.get("loadBalancerSourceRanges")),
    }


def _source_ranges(values: object) -> tuple[str, ...]:
    """loadBalancerSourceRanges as IPv4 networks, surrounding spaces ignored (as kube-proxy)."""
    found: list[str] = []
    for value in values if isinstance(values, list) else ():
        try:
            net = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            continue
        if net.version == 4:
            found.append(str(net))
    return tuple(dict.fromkeys(found))


def _ipv4s(values: object) -> tuple[str, ...]:
    """The IPv4 addresses of a list, each once, in order."""
    found = [v for v in values if _is_ipv4(v)] if isinstance(values, list) else []
    return tuple(dict.fromkeys(found))


def load_balancer_vips(svc: JsonDict) -> tuple[str, ...]:
    """The ingress IPs traffic arrives at with the destination unchanged (ipMode VIP, or
    none given): kube-proxy's LoadBalancerVIPs. With ipMode Proxy the load balancer
    delivers to node ports itself, so the IP gets no rules."""
    lb = (svc.get("status") or {}).get("loadBalancer") or {}
    ingress = lb.get("ingress") if isinstance(lb, Mapping) else None
    if not isinstance(ingress, list):
        return ()
    return _ipv4s([i.get("ip") for i in ingress
                   if isinstance(i, Mapping) and i.get("ipMode") in (None, "VIP")])


def _valid_node_port(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _endpoints_for(
    slices: Iterable[JsonDict], port_name: str, protocol: str, node_name: str
) -> tuple[Endpoint, ...]:
    """Endpoints of the slice port matching the service port by name and protocol.

    The same ip:port may appear in two slices while the EndpointSlice
    controller moves it; the first slice (by name) wins so the result is stable.
    """
    found: dict[tuple[str, int], Endpoint] = {}
    for eps in slices:
        target_port = _slice_target_port(eps, port_name, protocol)
        if target_port is None:
            continue
        for raw in eps.get("endpoints") or ():
            endpoint = _endpoint(raw, target_port, node_name)
            if endpoint is not None and (endpoint.ip, target_port) not in found:
                found[(endpoint.ip, target_port)] = endpoint
    return tuple(sorted(found.values(), key=_endpoint_sort_key))


def _slice_target_port(eps: JsonDict, port_name: str, protocol: str) -> int | None:
    """The slice's port number for the service port `port_name`/`protocol`, if valid."""
    target_port = None
    for slice_port in eps.get("ports") or ():
        if (slice_port.get("name") or "") == port_name and (slice_port.get("protocol") or "TCP") == protocol:
            target_port = slice_port.get("port")
            break
    if not isinstance(target_port, int) or target_port <= 0:
        return None
    return target_port


def _endpoint(raw: JsonDict, target_port: int, node_name: str) -> Endpoint | None:
    """One slice endpoint as an Endpoint (its first address), or None without an IPv4 one."""
    addresses = raw.get("addresses") or ()
    if not addresses or not _is_ipv4(addresses[0]):
        return None
    conditions = raw.get("conditions") or {}
    ready = conditions.get("ready")
    serving = conditions.get("serving")
    ready_b = True if ready is None else bool(ready)
    return Endpoint(
        ip=addresses[0],
        port=target_port,
        ready=ready_b,
        serving=ready_b if serving is None else bool(serving),
        terminating=bool(conditions.get("terminating") or False),
        is_local=bool(node_name) and raw.get("nodeName") == node_name,
    )


def _endpoint_sort_key(ep: Endpoint) -> tuple[int, int]:
    """Numeric IP order, so 10.0.0.9 sorts before 10.0.0.10."""
    return (_ipv4_int(ep.ip) or 0, ep.port)


def _is_ipv4(value: object) -> bool:
    return isinstance(value, str) and _ipv4_int(value) is not None


@functools.lru_cache(maxsize=1 << 18)
def _ipv4_int(value: str) -> int | None:
    """Parsed address, cached: every sync sees the same few thousand addresses again."""
    try:
        return int(ipaddress.IPv4Address(value))
    except ValueError:
        return None
