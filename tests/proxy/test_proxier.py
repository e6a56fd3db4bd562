"""Proxier glue: no rules before both caches have synced."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.proxy.proxier import Proxier
from services.proxy.rules import NodeSettings
from services.proxy.runner import SyncTrigger
from tests.proxy.netns import NetnsLab
from tests.proxy.objects import port, service


async def test_no_sync_until_caches_synced(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    proxier = Proxier(NodeSettings("node-a", "10.244.0.0/16"), registry=CollectorRegistry(), netns=ns)
    proxier.on_service(service("web", "10.96.0.10", [port(80)]))
    proxier.mark_services_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    # Slices not listed yet: programming now would REJECT a service that has endpoints.
    assert not proxier.ready
    assert "KUBE-SERVICES" not in lab.exec(ns, ["iptables-save"]).stdout

    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    assert proxier.ready
    assert '"default/web has no endpoints"' in lab.exec(ns, ["iptables-save", "-t", "filter"]).stdout
