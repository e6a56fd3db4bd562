"""Glue between informer events and the rules: record objects, sync on the runner.

Handlers (`on_service`, `on_service_deleted`, ...) only store the latest
object and ask the runner for a sync; the sync reads the whole current state
(level-triggered), so a missed or repeated event cannot leave stale rules.
No sync runs before both caches have synced: programming rules from a
half-filled cache would REJECT traffic to services whose endpoints are merely
not listed yet.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from services.proxy.announce import Addresses, addresses_to_announce, announce, ready_nodes
from services.proxy.conntrack import stale_udp_flows
from services.proxy.iptables import (
    Conntrack,
    ConntrackCommands,
    Iptables,
    IptablesApplier,
    delete_udp_flows,
)
from services.proxy.model import Snapshot, build_snapshot
from services.proxy.rules import NodeSettings, render
from services.proxy.runner import BoundedFrequencyRunner, SyncTrigger

log = logging.getLogger(__name__)

JsonDict = Mapping[str, Any]


def object_key(obj: JsonDict) -> str:
    """`namespace/name`, the store key used across the project."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


class Proxier:
    """One node's service proxy in iptables mode.

    `iptables` and `conntrack` default to the real commands (inside `netns`, if given);
    tests pass the in-memory fakes instead.
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
    ) -> None:
        self.settings = settings
        self.netns = netns
        self.applier = IptablesApplier(netns=netns, iptables=iptables)
        self.conntrack: Conntrack = conntrack if conntrack is not None else ConntrackCommands(netns=netns)
        self.runner = BoundedFrequencyRunner(
            self.sync, registry=registry, min_interval=min_interval, sync_period=sync_period
        )
        self.addresses = addresses  # where load-balancer addresses are announced (None: not here)
        self._nodes: dict[str, JsonDict] = {}
        self._services: dict[str, JsonDict] = {}
        self._slices: dict[str, JsonDict] = {}
        self._services_synced = False
        self._slices_synced = False
        self._applied: Snapshot = Snapshot(())
        self.has_synced_rules = False

    # -- event handlers: record and request, nothing else --------------------

    def on_service(self, obj: JsonDict) -> None:
        self._services[object_key(obj)] = obj
        self.runner.request()

    def on_service_deleted(self, obj: JsonDict) -> None:
        self._services.pop(object_key(obj), None)
        self.runner.request()

    def on_endpoint_slice(self, obj: JsonDict) -> None:
        self._slices[object_key(obj)] = obj
        self.runner.request()

    def on_endpoint_slice_deleted(self, obj: JsonDict) -> None:
        self._slices.pop(object_key(obj), None)
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
        return build_snapshot(
            self._services.values(), self._slices.values(), node_name=self.settings.node_name
        )

    async def sync(self, trigger: SyncTrigger) -> None:
        """Render everything and apply it; UDP conntrack cleanup follows the new rules."""
        if not (self._services_synced and self._slices_synced):
            log.info("proxy sync skipped: caches not synced yet")
            return
        snapshot = self.snapshot()
        ruleset = render(snapshot, self.settings)
        full = trigger is not SyncTrigger.CHANGED or not self.has_synced_rules
        plan = await self.applier.apply(ruleset, full=full)
        flows = stale_udp_flows(self._applied, snapshot)
        self._applied = snapshot
        self.has_synced_rules = True
        if flows:
            await delete_udp_flows(flows, self.conntrack)
        if self.addresses is not None:
            await announce(self.addresses, addresses_to_announce(
                self._services.values(), self._nodes.values(), self.settings.node_name))
        log.info(
            "proxy synced",
            extra={
                "trigger": trigger.value,
                "full": full,
                "service_ports": len(snapshot.service_ports),
                "written_chains": sum(len(c) for c in plan.written_chains.values()),
                "stale_chains": sum(len(c) for c in plan.stale_chains.values()),
                "udp_flow_filters": len(flows),
            },
        )
