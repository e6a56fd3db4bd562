"""Glue between informer events and the rules: record objects, sync on the runner.

Handlers (`on_service`, `on_service_deleted`, ...) only store the latest
object and ask the runner for a sync; the sync reads the whole current state
(level-triggered), so a missed or repeated event cannot leave stale rules.
No sync runs before both caches have synced: programming rules from a
half-filled cache would REJECT traffic to services whose endpoints are merely
not listed yet.

Two modes, as kube-proxy's `--proxy-mode`: `iptables` renders the whole ruleset every
sync and lets the applier skip unchanged chains; `nftables` hands the applier only the
Services changed since the last sync (a `ServiceIndex` keeps each Service's ports and
recomputes only those), so one endpoint change costs the same at 10 or 10,000 Services.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from services.proxy.announce import Addresses, addresses_to_announce, announce, ready_nodes
from services.proxy.conntrack import stale_udp_flows
from services.proxy.healthcheck import ServiceHealthServer, health_check_ports, local_ready_endpoints
from services.proxy.iptables import (
    Conntrack,
    ConntrackCommands,
    Iptables,
    IptablesApplier,
    delete_udp_flows,
)
from services.proxy.model import ServiceIndex, ServiceKey, ServicePort, Snapshot
from services.proxy.nftables import NftSettings
from services.proxy.nftsync import Nft, NftablesApplier, NftPlan
from services.proxy.restore import RestorePlan
from services.proxy.rules import NodeSettings, render
from services.proxy.runner import BoundedFrequencyRunner, SyncTrigger

log = logging.getLogger(__name__)

JsonDict = Mapping[str, Any]


def object_key(obj: JsonDict) -> str:
    """`namespace/name`, the store key used across the project."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


PROXY_MODES = ("iptables", "nftables")


class Proxier:
    """One node's service proxy, in iptables or nftables mode.

    `iptables`, `nft` and `conntrack` default to the real commands (inside `netns`, if
    given); tests pass the in-memory fakes instead.
    """

    def __init__(
        self,
        settings: NodeSettings,
        *,
        registry: CollectorRegistry,
        netns: str | None = None,
        iptables: Iptables | None = None,
        conntrack: Conntrack | None = None,
        min_interval: float = 1.0,
        sync_period: float = 30.0,
        addresses: Addresses | None = None,
        mode: str = "iptables",
        nft: Nft | None = None,
        service_cidrs: tuple[str, ...] = (),
        health_checks: ServiceHealthServer | None = None,
    ) -> None:
        if mode not in PROXY_MODES:
            raise ValueError(f"unknown proxy mode {mode!r}")
        self.settings = settings
        self.netns = netns
        self.mode = mode
        self.applier = IptablesApplier(netns=netns, iptables=iptables)
        self.nft_applier = NftablesApplier(
            NftSettings(node_name=settings.node_name, cluster_cidr=settings.cluster_cidr,
                        service_cidrs=service_cidrs, masquerade_mark=settings.masquerade_mark),
            nft=nft, netns=netns)
        self.conntrack: Conntrack = conntrack if conntrack is not None else ConntrackCommands(netns=netns)
        self.runner = BoundedFrequencyRunner(
            self.sync, registry=registry, min_interval=min_interval, sync_period=sync_period
        )
        self.addresses = addresses  # where load-balancer addresses are announced (None: not here)
        self.health_checks = health_checks  # health check node ports (None: not served here)
        self._nodes: dict[str, JsonDict] = {}
        self.index = ServiceIndex(settings.node_name)
        self._services_synced = False
        self._slices_synced = False
        self._applied: dict[ServiceKey, tuple[ServicePort, ...]] = {}
        self.has_synced_rules = False

    # -- event handlers: record and request, nothing else --------------------

    def on_service(self, obj: JsonDict) -> None:
        self.index.set_service(obj)
        self.runner.request()

    def on_service_deleted(self, obj: JsonDict) -> None:
        self.index.delete_service(obj)
        self.runner.request()

    def on_endpoint_slice(self, obj: JsonDict) -> None:
        self.index.set_slice(obj)
        self.runner.request()

    def on_endpoint_slice_deleted(self, obj: JsonDict) -> None:
        self.index.delete_slice(obj)
        self.runner.request()

    def on_node(self, obj: JsonDict) -> None:
        """Only a change of readiness matters (who answers for an address): heartbeats that
        change nothing else ask for no sync."""
        name = (obj.get("metadata") or {}).get("name") or ""
        before = self._nodes.get(name)
        self._nodes[name] = obj
        if before is None or ready_nodes([before]) != ready_nodes([obj]):
            self.runner.request()

    def on_node_deleted(self, obj: JsonDict) -> None:
        self._nodes.pop((obj.get("metadata") or {}).get("name") or "", None)
        self.runner.request()

    def mark_services_synced(self) -> None:
        self._services_synced = True
        self.runner.request()

    def mark_endpoint_slices_synced(self) -> None:
        self._slices_synced = True
        self.runner.request()

    @property
    def ready(self) -> bool:
        """For /readyz: true once rules reflecting a full cache are in the kernel."""
        return self.has_synced_rules

    # -- the sync ------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.index.snapshot()

    async def sync(self, trigger: SyncTrigger) -> None:
        """Render and apply; UDP conntrack cleanup follows the new rules."""
        if not (self._services_synced and self._slices_synced):
            log.info("proxy sync skipped: caches not synced yet")
            return
        ports = self.index.ports()
        changed = self.index.take_changed()
        try:
            if self.mode == "nftables":
                # periodic syncs stay partial: the table is ours alone, nothing edits it
                full = trigger is SyncTrigger.RETRY or not self.has_synced_rules
                plan: NftPlan | RestorePlan = await self.nft_applier.apply(ports, changed, full=full)
            else:
                full = trigger is not SyncTrigger.CHANGED or not self.has_synced_rules
                plan = await self.applier.apply(render(self.index.snapshot(), self.settings), full=full)
        except BaseException:
            self.index.mark_changed(changed)  # still to do (and a failed nft apply is full next)
            raise
        flows = stale_udp_flows(self._before(changed), self._after(changed, ports))
        for key in changed:  # the others' ports are what they were
            if key in ports:
                self._applied[key] = ports[key]
            else:
                self._applied.pop(key, None)
        self.has_synced_rules = True
        if flows:
            await delete_udp_flows(flows, self.conntrack)
        if self.health_checks is not None and changed:  # unchanged Services: the same ports and counts
            await self.health_checks.sync(health_check_ports(ports), local_ready_endpoints(ports))
        if self.addresses is not None:
            await announce(self.addresses, addresses_to_announce(
                self.index.services.values(), self._nodes.values(), self.settings.node_name))
        log.info("proxy synced", extra={"trigger": trigger.value, "full": full, "mode": self.mode,
                                        "changed_services": len(changed), **_plan_figures(plan),
                                        "udp_flow_filters": len(flows)})

    def _before(self, changed: set[ServiceKey]) -> Snapshot:
        return Snapshot(tuple(sp for key in changed for sp in self._applied.get(key, ())))

    @staticmethod
    def _after(changed: set[ServiceKey], ports: dict[ServiceKey, tuple[ServicePort, ...]]) -> Snapshot:
        return Snapshot(tuple(sp for key in changed for sp in ports.get(key, ())))


def _plan_figures(plan: NftPlan | RestorePlan) -> dict[str, int]:
    if isinstance(plan, NftPlan):
        return {"services": plan.services, "written_chains": plan.chains_written,
                "changed_elements": plan.elements_changed, "stale_chains": len(plan.stale_chains)}
    return {"written_chains": sum(len(c) for c in plan.written_chains.values()),
            "stale_chains": sum(len(c) for c in plan.stale_chains.values())}
