"""Watch side of the cluster DNS: slim records built from Kubernetes objects, plus indexes.

Informer handlers hand plain Kubernetes JSON dicts to :class:`RecordIndex`. Only the few fields
DNS needs are kept (as CoreDNS does), so answering never walks full objects and memory stays
small. The answering side sees the index only through :class:`RecordReader`.

Cached responses are invalidated through versions: every change stamps the pieces it
touched (a service name, a namespace's existence, an IP's PTR names) with the new
``generation``; a cached answer stays valid only while the piece it was built from keeps
its stamp.
``epoch`` moves when every cached answer must go (sync, compaction of the stamps).
The index is not thread-safe: mutate and read it on the event loop thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

ServiceKey = tuple[str, str]  # (namespace, name), lower-cased
Dependency = tuple[str, ...]  # what one answer was built from; see the *_dependency helpers


def service_dependency(namespace: str, name: str) -> Dependency:
    """A service's record and its published endpoints."""
    return ("svc", namespace, name)


def namespace_dependency(namespace: str) -> Dependency:
    """Whether a namespace holds any service."""
    return ("ns", namespace)


def address_dependency(address: str) -> Dependency:
    """The PTR names of one (normalised) IP."""
    return ("ip", address)


@dataclass(frozen=True, slots=True)
class PortRecord:
    name: str  # "" for an unnamed port: not reachable through SRV _<name>
    port: int
    protocol: str  # lower-case, as it appears in SRV names: "tcp", "udp", "sctp"


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...]  # empty when headless or not yet allocated
    headless: bool
    external_name: str | None
    ports: tuple[PortRecord, ...]
    publish_not_ready: bool


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One address of one endpoint, with the ports of the slice it came from."""

    address: str
    hostname: str | None
    ready: bool
    ports: tuple[PortRecord, ...]

    @property
    def label(self) -> str:
        """The DNS label CoreDNS gives an endpoint: its hostname, else its dashed address."""
        return self.hostname or dashed_address(self.address)


@dataclass(frozen=True, slots=True)
class SliceRecord:
    namespace: str
    name: str
    service: str
    endpoints: tuple[EndpointRecord, ...]


class RecordReader(Protocol):
    """The narrow read interface the answering side uses."""

    epoch: int

    @property
    def synced(self) -> bool: ...

    def version(self, dependency: Dependency) -> int: ...

    def service(self, namespace: str, name: str) -> ServiceRecord | None: ...

    def endpoints(self, namespace: str, name: str) -> tuple[EndpointRecord, ...]: ...

    def has_namespace(self, namespace: str) -> bool: ...

    def names_for_ip(self, address: str) -> tuple[str, ...]: ...


def dashed_address(address: str) -> str:
    """10.1.2.3 -> 10-1-2-3, fd00::1 -> fd00--1 (the pod/endpoint label form)."""
    return address.replace(".", "-").replace(":", "-")


def normalize_ip(address: str) -> str | None:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return None


def _ports(raw: Any) -> tuple[PortRecord, ...]:
    ports = []
    for item in raw or ():
        if not isinstance(item, Mapping):
            continue
        port = item.get("port")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            continue
        name = item.get("name") or ""
        protocol = item.get("protocol") or "TCP"
        ports.append(PortRecord(name=str(name).lower(), port=port, protocol=str(protocol).lower()))
    return tuple(ports)


def service_record(obj: Mapping[str, Any]) -> ServiceRecord:
    """Slim a v1 Service dict down to what DNS answers from."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    namespace = str(meta.get("namespace") or "default").lower()
    name = str(meta["name"]).lower()
    raw_ips = spec.get("clusterIPs") or [spec.get("clusterIP") or ""]
    headless = spec.get("clusterIP") == "None" or "None" in raw_ips
    ips = () if headless else tuple(ip for ip in map(normalize_ip, map(str, raw_ips)) if ip)
    external = None
    if spec.get("type") == "ExternalName" and spec.get("externalName"):
        external = str(spec["externalName"]).rstrip(".").lower()
    return ServiceRecord(
        namespace=namespace,
        name=name,
        cluster_ips=ips,
        headless=headless,
        external_name=external,
        ports=_ports(spec.get("ports")),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
    )


def slice_record(obj: Mapping[str, Any]) -> SliceRecord:
    """Slim a discovery.k8s.io/v1 EndpointSlice dict; FQDN slices carry no addresses for us."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    ports = _ports(obj.get("ports"))
    endpoints: list[EndpointRecord] = []
    if obj.get("addressType", "IPv4") in ("IPv4", "IPv6"):
        for ep in obj.get("endpoints") or ():
            if not isinstance(ep, Mapping):
                continue
            # The API says a missing "ready" condition means ready.
            ready = (ep.get("conditions") or {}).get("ready") is not False
            hostname = ep.get("hostname")
            hostname = str(hostname).lower() if hostname else None
            for address in ep.get("addresses") or ():
                ip = normalize_ip(str(address))
                if ip:
                    endpoints.append(EndpointRecord(ip, hostname, ready, ports))
    return SliceRecord(
        namespace=str(meta.get("namespace") or "default").lower(),
        name=str(meta["name"]),
        service=str(labels.get(SERVICE_NAME_LABEL) or "").lower(),
        endpoints=tuple(endpoints),
    )


def published_endpoints(
    service: ServiceRecord, slices: list[SliceRecord]
) -> tuple[EndpointRecord, ...]:
    """Ready endpoints (or all, with publishNotReadyAddresses), one per address and label."""
    seen: set[tuple[str, str]] = set()
    out = []
    for sl in sorted(slices, key=lambda s: s.name):
        for ep in sl.endpoints:
            if not (ep.ready or service.publish_not_ready):
                continue
            key = (ep.address, ep.label)
            if key not in seen:
                seen.add(key)
                out.append(ep)
    return tuple(out)


def reverse_names(
    service: ServiceRecord, endpoints: tuple[EndpointRecord, ...]
) -> frozenset[tuple[str, str]]:
    """(ip, zone-relative name) pairs a service contributes to PTR answers."""
    base = f"{service.name}.{service.namespace}.svc"
    pairs = {(ip, base) for ip in service.cluster_ips}
    pairs.update((ep.address, f"{ep.label}.{base}") for ep in endpoints)
    return frozenset(pairs)


class RecordIndex:
    """Services and endpoint slices by name, with a reverse index by IP for PTR."""

    def __init__(self) -> None:
        self.generation = 0  # bumped by every change; the stamp for versions
        self.epoch = 0  # bumped when all cached answers must go
        self._versions: dict[Dependency, int] = {}
        self._synced = asyncio.Event()
        self._services: dict[ServiceKey, ServiceRecord] = {}
        self._slices: dict[tuple[str, str], SliceRecord] = {}
        self._slices_by_service: dict[ServiceKey, dict[str, SliceRecord]] = {}
        self._endpoints: dict[ServiceKey, tuple[EndpointRecord, ...]] = {}
        self._namespaces: Counter[str] = Counter()
        self._reverse_by_service: dict[ServiceKey, frozenset[tuple[str, str]]] = {}
        self._reverse: dict[str, set[str]] = {}

    # -- write side (informer handlers) ------------------------------------------------------

    def upsert_service(self, obj: Mapping[str, Any]) -> None:
        try:
            record = service_record(obj)
        except (KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring a Service DNS cannot read: %r", exc)
            return
        key = (record.namespace, record.name)
        if key not in self._services:
            self._namespaces[record.namespace] += 1
            if self._namespaces[record.namespace] == 1:
                self._touch(namespace_dependency(record.namespace))
        self._services[key] = record
        self._refresh(key)
        log.debug("service %s/%s: ips=%s ports=%d", *key, record.cluster_ips, len(record.ports))

    def delete_service(self, namespace: str, name: str) -> None:
        key = (namespace.lower(), name.lower())
        if self._services.pop(key, None) is None:
            return
        self._namespaces[key[0]] -= 1
        if self._namespaces[key[0]] <= 0:
            del self._namespaces[key[0]]
            self._touch(namespace_dependency(key[0]))
        self._refresh(key)
        log.debug("service %s/%s: deleted", *key)

    def upsert_endpointslice(self, obj: Mapping[str, Any]) -> None:
        try:
            record = slice_record(obj)
        except (KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring an EndpointSlice DNS cannot read: %r", exc)
            return
        slice_key = (record.namespace, record.name)
        previous = self._slices.get(slice_key)
        if previous is not None and previous.service != record.service:
            self._detach_slice(previous)
        self._slices[slice_key] = record
        if record.service:
            key = (record.namespace, record.service)
            self._slices_by_service.setdefault(key, {})[record.name] = record
            self._refresh(key)
        log.debug(
            "endpointslice %s/%s: service=%s endpoints=%d",
            *slice_key, record.service or "-", len(record.endpoints),
        )

    def delete_endpointslice(self, namespace: str, name: str) -> None:
        previous = self._slices.pop((namespace.lower(), name), None)
        if previous is not None:
            self._detach_slice(previous)
            log.debug("endpointslice %s/%s: deleted", namespace.lower(), name)

    def apply_event(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        """Apply a watch event ("ADDED"/"MODIFIED"/"DELETED") for a Service or EndpointSlice."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        if kind == "Service":
            if event_type == "DELETED":
                self.delete_service(namespace, str(meta["name"]))
            else:
                self.upsert_service(obj)
        elif kind == "EndpointSlice":
            if event_type == "DELETED":
                self.delete_endpointslice(namespace, str(meta["name"]))
            else:
                self.upsert_endpointslice(obj)
        else:
            raise ValueError(f"DNS does not index {kind}")

    def mark_synced(self) -> None:
        """Called once the informers' initial lists are in; until then queries get SERVFAIL."""
        if not self._synced.is_set():
            self._synced.set()
            self.generation += 1
            self.epoch += 1
            log.info("records synced: %d services", len(self._services))

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def _detach_slice(self, record: SliceRecord) -> None:
        if not record.service:
            return
        key = (record.namespace, record.service)
        by_name = self._slices_by_service.get(key)
        if by_name is not None:
            by_name.pop(record.name, None)
            if not by_name:
                del self._slices_by_service[key]
        self._refresh(key)

    def _touch(self, dependency: Dependency) -> None:
        self.generation += 1
        versions = self._versions
        if dependency not in versions:
            live = len(self._services) + len(self._namespaces) + len(self._reverse)
            if len(versions) > 2 * live + 1024:
                # Stamps of long-gone names pile up; forget them all and flush the cache.
                versions.clear()
                self.epoch += 1
        versions[dependency] = self.generation

    def _refresh(self, key: ServiceKey) -> None:
        """Recompute one service's derived view (published endpoints, PTR names)."""
        self._touch(service_dependency(*key))
        service = self._services.get(key)
        if service is None:
            self._endpoints.pop(key, None)
            new_pairs: frozenset[tuple[str, str]] = frozenset()
        else:
            slices = list(self._slices_by_service.get(key, {}).values())
            endpoints = published_endpoints(service, slices)
            self._endpoints[key] = endpoints
            new_pairs = reverse_names(service, endpoints)
        old_pairs = self._reverse_by_service.get(key, frozenset())
        for ip in {ip for ip, _ in old_pairs ^ new_pairs}:
            self._touch(address_dependency(ip))
        for ip, name in old_pairs - new_pairs:
            names = self._reverse.get(ip)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._reverse[ip]
        for ip, name in new_pairs - old_pairs:
            self._reverse.setdefault(ip, set()).add(name)
        if new_pairs:
            self._reverse_by_service[key] = new_pairs
        else:
            self._reverse_by_service.pop(key, None)

    # -- read side (RecordReader) ------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def version(self, dependency: Dependency) -> int:
        return self._versions.get(dependency, 0)

    def service(self, namespace: str, name: str) -> ServiceRecord | None:
        return self._services.get((namespace, name))

    def endpoints(self, namespace: str, name: str) -> tuple[EndpointRecord, ...]:
        return self._endpoints.get((namespace, name), ())

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def names_for_ip(self, address: str) -> tuple[str, ...]:
        return tuple(sorted(self._reverse.get(address, ())))

    def __len__(self) -> int:
        return len(self._services)
