"""The NetworkPolicy agent of one node: watch pods, namespaces and policies, keep this node's
`ip minicluster-netpol` table equal to what they say (services/netpol/model.py, rules.py).

Level-triggered like the proxy: handlers only record objects and request a sync; a sync
renders the whole table from everything recorded and applies it in one `nft -f` when it
changed. Nothing is programmed before all three caches have synced: rules from a half-filled
cache would cut off pods that policies merely have not been listed for yet.

A new pod's policy is in place before its first packet: the node agent, once CNI gave the
sandbox its address and before any container starts, asks this agent (`POST /podnetwork` on
its health port, node-local) and waits for `wait_programmed`: the address is taken from the
node agent (the API learns it only later, from the pod's status), the table synced with it,
and only then the answer given (Cilium's CNI ADD waits for the endpoint's policy the same
way). A pod no policy selects waits for that one sync too: whether a policy selects it is
known only then.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from kubecore.controller.runner import BoundedFrequencyRunner, SyncTrigger
from services.netpol.model import pod_ip, pod_policies
from services.netpol.rules import render

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]


class Nft(Protocol):
    async def run(self, text: str) -> object: ...


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class PolicyAgent:
    def __init__(self, node_name: str, nft: Nft, *, registry: CollectorRegistry,
                 min_interval: float = 0.2, sync_period: float = 60.0) -> None:
        self.node_name = node_name
        self.nft = nft
        self.pods: dict[str, Obj] = {}
        self.namespaces: dict[str, Obj] = {}
        self.policies: dict[str, Obj] = {}
        self.synced = {"pods": False, "namespaces": False, "networkpolicies": False}
        self.applied: str | None = None
        # pod key -> (uid, IP) the node agent gave for a new sandbox, until the pod's status has it
        self.new_addresses: dict[str, tuple[str, str]] = {}
        self.programmed: frozenset[str] = frozenset()  # this node's pod IPs the table accounts for
        self._synced = asyncio.Condition()
        self.runner = BoundedFrequencyRunner(self.sync, registry=registry, min_interval=min_interval,
                                             sync_period=sync_period, metrics_prefix="netpol")

    def store(self, kind: str) -> dict[str, Obj]:
        return {"pods": self.pods, "namespaces": self.namespaces, "networkpolicies": self.policies}[kind]

    def on_object(self, kind: str, obj: Obj) -> None:
        self.store(kind)[_key(obj)] = obj
        self.runner.request()

    def on_deleted(self, kind: str, obj: Obj) -> None:
        self.store(kind).pop(_key(obj), None)
        if kind == "pods":
            self.new_addresses.pop(_key(obj), None)
        self.runner.request()

    def mark_synced(self, kind: str) -> None:
        self.synced[kind] = True
        self.runner.request()

    @property
    def ready(self) -> bool:
        return self.applied is not None

    def _as_seen(self, key: str, pod: Obj) -> Obj:
        """`pod` as the policies see it: for one of this node's pods, a new sandbox's address,
        given by the node agent, stands in for the one its status does not show yet."""
        given = self.new_addresses.get(key)
        if (given is None or given[0] != (pod.get("metadata") or {}).get("uid") or pod_ip(pod)
                or (pod.get("spec") or {}).get("nodeName") != self.node_name):
            return pod
        return {**pod, "status": {**(pod.get("status") or {}), "podIP": given[1]}}

    def desired(self) -> tuple[str, frozenset[str]]:
        """The table's text, and the local pod IPs it accounts for."""
        pods = [self._as_seen(key, pod) for key, pod in self.pods.items()]
        text = render(pod_policies(pods, self.namespaces.values(), self.policies.values(), self.node_name))
        local = frozenset(pod_ip(p) for p in pods if (p.get("spec") or {}).get("nodeName") == self.node_name)
        return text, local - {""}

    async def wait_programmed(self, namespace: str, name: str, uid: str, ip: str, timeout: float) -> bool:
        """Take `ip` as pod namespace/name's (uid `uid`) new address and wait until the table
        synced with it is in the kernel (True), at most `timeout` seconds (False)."""
        key = f"{namespace}/{name}"
        self.new_addresses[key] = (uid, ip)
        self.runner.request()

        def done() -> bool:
            pod = self.pods.get(key)
            return pod is not None and (pod.get("metadata") or {}).get("uid") == uid and ip in self.programmed
        async with self._synced:
            try:
                await asyncio.wait_for(self._synced.wait_for(done), timeout)
            except TimeoutError:
                return False
        return True

    async def sync(self, trigger: SyncTrigger) -> None:
        if not all(self.synced.values()):
            log.info("policy sync skipped: caches not synced yet")
            return
        for key in [k for k in self.new_addresses if pod_ip(self.pods.get(k) or {})]:
            del self.new_addresses[key]  # an address the API has now needs no stand-in
        text, local_ips = self.desired()
        if text == self.applied and trigger is SyncTrigger.CHANGED:
            await self._accounted(local_ips)
            return
        self.applied = None  # until nft took it, what is in the kernel is not known
        await self.nft.run(text)
        self.applied = text
        await self._accounted(local_ips)
        log.info("policies synced", extra={"trigger": trigger.value, "bytes": len(text),
                                            "policies": len(self.policies)})

    async def _accounted(self, local_ips: frozenset[str]) -> None:
        async with self._synced:
            self.programmed = local_ips
            self._synced.notify_all()
