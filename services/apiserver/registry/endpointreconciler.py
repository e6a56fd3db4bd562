"""The `kubernetes` Service's endpoints: every API server alive, as kube-apiserver's lease
endpoint reconciler keeps them (pkg/controlplane/reconcilers: lease.go, endpointsadapter.go).

Every `interval` (10 s) each API server refreshes its own master lease (`Leases`: a key that
etcd drops `ttl` seconds after the last refresh), lists the leases alive, and makes the
Endpoints `default/kubernetes` (labelled not to be mirrored) and the EndpointSlice
`default/kubernetes` list exactly those addresses, sorted, with the server's port. A server
that dies stops refreshing and leaves the list within ttl + interval; one that shuts down
cleanly removes its lease and itself at once. Zero leases listed is taken as a fault of the
listing, never as "no API servers": the endpoints are then left as they are.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import ObjectStorage

log = logging.getLogger("apiserver")

SERVICE = "kubernetes"
NAMESPACE = "default"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Leases(Protocol):
    async def update(self, ip: str) -> None: ...

    async def list(self) -> list[str]: ...

    async def remove(self, ip: str) -> None: ...


def publishable(ip: str) -> str | None:
    """Why `ip` cannot be an endpoint of the kubernetes Service (EndpointSlice validation
    refuses loopback, link-local and unspecified addresses), or None."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip!r} is not an IP address"
    if addr.is_loopback or addr.is_unspecified or addr.is_link_local or addr.is_multicast:
        return f"{ip} is a loopback, unspecified, link-local or multicast address"
    return None


class LeaseEndpointReconciler:
    def __init__(self, storage: ObjectStorage, leases: Leases, *, ip: str, port: int,
                 prepare: Callable[[R.ResourceType, Obj, str], Obj]) -> None:
        """`prepare(rt, obj, namespace)` fills what the API sets on create (uid, time)."""
        self.storage, self.leases, self.ip = storage, leases, ip
        self.ports = [{"name": "https", "port": port, "protocol": "TCP"}]
        self.prepare = prepare
        self.stopped = False
        self._lock = asyncio.Lock()

    async def reconcile(self) -> None:
        """Refresh this server's lease, then bring the endpoints to the leases listed."""
        async with self._lock:
            if self.stopped:
                return
            await self.leases.update(self.ip)
            await self._sync()

    async def remove(self) -> None:
        """At shutdown: leave the list now rather than when the lease runs out; no more
        reconciling after."""
        async with self._lock:
            self.stopped = True
            await self.leases.remove(self.ip)
            await self._sync()

    async def _sync(self) -> None:
        ips = sorted(set(await self.leases.list()))  # kube's sets.List: string order
        if not ips:
            log.warning("no API server addresses listed in storage: leaving the endpoints of "
                        "the kubernetes Service as they are")
            return
        await _retrying(lambda: self._sync_endpoints(ips))
        await _retrying(lambda: self._sync_slices(ips))

    async def _sync_endpoints(self, ips: list[str]) -> None:
        subsets = [{"addresses": [{"ip": ip} for ip in ips], "ports": self.ports}]
        labels = {SKIP_MIRROR: "true"}
        try:
            current = await self.storage.get(R.ENDPOINTS, NAMESPACE, SERVICE)
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self.storage.create(R.ENDPOINTS, self.prepare(R.ENDPOINTS, {
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": labels},
                "subsets": subsets}, NAMESPACE))
            return
        if current.get("subsets") == subsets and (current["metadata"].get("labels") or {}) == labels:
            return

        async def mutate(obj: Obj) -> Obj:
            obj["metadata"]["labels"] = dict(labels)
            obj["subsets"] = subsets
            return obj

        log.warning("resetting the endpoints of the kubernetes Service to %s", ips)
        await self.storage.update(R.ENDPOINTS, NAMESPACE, SERVICE, mutate)

    async def _sync_slices(self, ips: list[str]) -> None:
        endpoints = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]
        labels = {SERVICE_NAME_LABEL: SERVICE}
        slices, _ = await self.storage.list(R.ENDPOINTSLICES, NAMESPACE)
        primary = None
        for s in slices:
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) != SERVICE:
                continue
            if s["metadata"]["name"] == SERVICE and s.get("addressType") == "IPv4":
                primary = s
            else:  # as far as this server is concerned, no other slice should exist
                try:
                    await self.storage.delete(R.ENDPOINTSLICES, NAMESPACE, s["metadata"]["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        if primary is None:
            await self.storage.create(R.ENDPOINTSLICES, self.prepare(R.ENDPOINTSLICES, {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": labels},
                "addressType": "IPv4", "endpoints": endpoints, "ports": self.ports}, NAMESPACE))
            return
        if (primary.get("endpoints") == endpoints and primary.get("ports") == self.ports
                and (primary["metadata"].get("labels") or {}) == labels):
            return

        async def mutate(obj: Obj) -> Obj:
            obj["metadata"]["labels"] = dict(labels)
            obj["addressType"] = "IPv4"
            obj["endpoints"] = endpoints
            obj["ports"] = self.ports
            return obj

        await self.storage.update(R.ENDPOINTSLICES, NAMESPACE, SERVICE, mutate)


async def _retrying(step: Callable[[], Awaitable[None]], attempts: int = 5) -> None:
    """kube's retry.OnError(DefaultBackoff, conflict or already exists): another API server
    wrote the same object between our read and our write."""
    for attempt in range(attempts):
        try:
            await step()
            return
        except ApiError as exc:
            if exc.code != 409 or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * 5 ** attempt)


async def run(reconciler: LeaseEndpointReconciler, interval: float) -> None:
    """Reconcile now and every `interval` seconds until cancelled; a failed round is logged
    and the next one tries again."""
    while True:
        try:
            await reconciler.reconcile()
        except ApiError as exc:
            log.warning("reconciling the kubernetes Service's endpoints: %s", exc.message)
        await asyncio.sleep(interval)
