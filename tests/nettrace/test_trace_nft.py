"""`trace` through nodes whose proxy runs in nftables mode: the seed's cluster with each node's
`ip kube-proxy` table as the proxy renders it, loaded into a scratch namespace by the real nft
and read back as the node agent reads it (`nft -j list table`, `nft -a list table`)."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from kubecore.nettrace.trace import Destination, World, trace
from services.proxy.model import ServiceIndex
from services.proxy.nftables import NftSettings
from services.proxy.nftsync import NftablesApplier
from tests.nettrace.world import NODES, PODS, node_obj, node_view, pod, seed_state
from tests.proxy.cases import ClusterState

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian's nftables) is not installed")]

MYSVC = Destination("service", "mysvc", "default", "8080")
NO_KUBE_IPTABLES = ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                    ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                    ":OUTPUT ACCEPT [0:0]\nCOMMIT\n")


def nft_table(state: ClusterState, node: str) -> tuple[dict[str, Any], str]:
    """The node's table as nft prints it after the proxy programmed `state` (in a scratch netns)."""
    ns = f"mctrace-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        index = ServiceIndex(node)
        for svc in state.services:
            index.set_service(svc)
        for eps in state.slices:
            index.set_slice(eps)
        applier = NftablesApplier(NftSettings(node, "10.244.0.0/16", ("10.96.0.0/12",)), netns=ns)
        asyncio.run(applier.apply(index.ports(), index.take_changed(), full=True))

        def nft(*argv: str) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, "nft", *argv], check=True, capture_output=True,
                                  text=True).stdout
        return json.loads(nft("-j", "list", "table", "ip", "kube-proxy")), nft("-a", "list", "table", "ip",
                                                                                 "kube-proxy")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def nft_world(state: ClusterState | None = None) -> World:
    state = state or seed_state()
    views = {}
    for name in NODES:
        view = node_view(name, state)
        view["iptables"] = NO_KUBE_IPTABLES
        view["nftables"], view["nftablesText"] = nft_table(state, name)
        views[name] = view
    return World(pods=[pod(n) for n in PODS], services=state.services, slices=state.slices,
                 nodes=[node_obj(n) for n in NODES], node_views=views)


def text(t) -> str:
    return "\n".join([s.title for s in t.steps] + [ln for s in t.steps for ln in s.lines + s.rules])


def test_the_seed_service_through_nftables_rules():
    t = trace(nft_world(), pod("client"), MYSVC)
    assert t.ok, t.summary
    assert sorted(e.address for e in t.endpoints) == ["10.244.1.2:8080", "10.244.2.2:8080", "10.244.2.3:8080"]
    assert all(abs(e.probability - 1 / 3) < 1e-3 for e in t.endpoints), t.endpoints
    assert all(e.chain.startswith("endpoint-") and "default/mysvc/tcp/" in e.chain for e in t.endpoints)
    shown = text(t)
    assert "nft ip kube-proxy services: ip daddr . meta l4proto . th dport vmap @service-ips" in shown
    assert "nftables numgen rules: 1/3, 1/2, ... so each gets 1/3" in shown
    assert "DNAT: the destination becomes" in shown


def test_scaled_to_zero_the_no_endpoint_map_rejects():
    state = seed_state()
    state.slices[0]["endpoints"] = []
    t = trace(nft_world(state), pod("client"), MYSVC)
    assert not t.ok and t.endpoints == []
    assert t.summary == ("filter FORWARD on node kind-worker ends in REJECT (the no-endpoint-services map): "
                         "the Service has no ready endpoints, so kube-proxy rejects its traffic")
    assert "nft ip kube-proxy reject-chain: reject" in text(t)


def test_an_address_of_the_service_range_nobody_holds_is_dropped():
    t = trace(nft_world(), pod("client"), Destination("ip", "10.96.99.99", "default", "80"))
    assert not t.ok
    assert t.summary == ("filter FORWARD on node kind-worker ends in DROP (cluster-ips-check): "
                         "no Service holds this address of the service range")


def test_to_a_pod_directly_nothing_rewrites_it():
    t = trace(nft_world(), pod("client"), Destination("pod", "test-jcdzz", "default", "8080"))
    assert t.ok and t.endpoints == [] and t.summary == "reaches pod default/test-jcdzz at 10.244.2.2:8080"
    assert "no rule rewrote the destination" in text(t)


def _loaded(text: str) -> tuple[dict[str, Any], str]:
    """`text` applied by the real nft in a scratch namespace, read back as the node agent reads it."""
    ns = f"mctrace-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=text, text=True, check=True)

        def nft(*argv: str) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, "nft", *argv], check=True, capture_output=True,
                                  text=True).stdout
        return (json.loads(nft("-j", "list", "table", "ip", "minicluster-netpol")),
                nft("-a", "list", "table", "ip", "minicluster-netpol"))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_a_network_policy_that_drops_the_packet_is_named():
    from services.netpol.model import pod_policies
    from services.netpol.rules import render as render_policies

    world = nft_world()
    deny = {"metadata": {"namespace": "default", "name": "deny-all"}, "spec": {"podSelector": {}}}
    for node in NODES:
        rendered = render_policies(pod_policies(world.pods, [{"metadata": {"name": "default"}}], [deny], node))
        world.node_views[node]["netpol"], world.node_views[node]["netpolText"] = _loaded(rendered)
    t = trace(world, pod("client"), MYSVC)
    assert not t.ok
    assert t.summary.startswith("filter FORWARD on node kind-worker ends in DROP (a NetworkPolicy): "
                                "policies isolate pod default/test-"), t.summary
    assert "nft ip minicluster-netpol forward: ip daddr vmap" in text(t)


def test_a_host_network_source_meets_the_nat_output_chain_and_is_masqueraded():
    world = nft_world()
    host = pod("client")
    host["spec"]["hostNetwork"] = True
    host["status"]["podIP"] = "172.18.0.3"
    t = trace(world, host, MYSVC)
    assert t.ok, t.summary
    titles = [s.title for s in t.steps]
    assert "nat OUTPUT on node kind-worker" in titles and "filter OUTPUT on node kind-worker" in titles
    shown = text(t)
    assert "nft ip kube-proxy nat-output: jump services" in shown
    assert "the source 172.18.0.3 is outside the cluster's pod range" in shown
    assert "MASQUERADE: the source becomes node kind-worker's address" in shown
