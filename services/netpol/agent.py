"""The NetworkPolicy agent of one node: watch pods, namespaces and policies, keep this node's
`ip minicluster-netpol` table equal to what they say (services/netpol/model.py, rules.py).

Level-triggered like the proxy: handlers only record objects and request a sync; a sync
renders the whole table from everything recorded and applies it in one `nft -f` when it
changed. Nothing is programmed before all three caches have synced: rules from a half-filled
cache would cut off pods that policies merely have not been listed for yet.

A new pod is isolated once the agent has seen its IP (status.podIPs), one sync after its
sandbox got the address: until then its first packets pass as for a pod no policy selects.
Closing that window needs the node agent to wait for the policy before reporting the pod
ready, which it does not do yet.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from kubecore.controller.runner import BoundedFrequencyRunner, SyncTrigger
from services.netpol.model import pod_policies
from services.netpol.rules import render

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]


class Nft(Protocol):
    async def run(self, text: str) -> None: ...


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
        self.runner = BoundedFrequencyRunner(self.sync, registry=registry, min_interval=min_interval,
                                             sync_period=sync_period, metrics_prefix="netpol")

    def store(self, kind: str) -> dict[str, Obj]:
        return {"pods": self.pods, "namespaces": self.namespaces, "networkpolicies": self.policies}[kind]

    def on_object(self, kind: str, obj: Obj) -> None:
        self.store(kind)[_key(obj)] = obj
        self.runner.request()

    def on_deleted(self, kind: str, obj: Obj) -> None:
        self.store(kind).pop(_key(obj), None)
        self.runner.request()

    def mark_synced(self, kind: str) -> None:
        self.synced[kind] = True
        self.runner.request()

    @property
    def ready(self) -> bool:
        return self.applied is not None

    def desired(self) -> str:
        return render(pod_policies(self.pods.values(), self.namespaces.values(), self.policies.values(),
                                   self.node_name))

    async def sync(self, trigger: SyncTrigger) -> None:
        if not all(self.synced.values()):
            log.info("policy sync skipped: caches not synced yet")
            return
        text = self.desired()
        if text == self.applied and trigger is SyncTrigger.CHANGED:
            return
        self.applied = None  # until nft took it, what is in the kernel is not known
        await self.nft.run(text)
        self.applied = text
        log.info("policies synced", extra={"trigger": trigger.value, "bytes": len(text),
                                            "policies": len(self.policies)})
