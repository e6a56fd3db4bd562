"""Names and ranges of the local cluster (pure)."""
from __future__ import annotations

import ipaddress

from cluster.components import all_components
from cluster.config import ClusterConfig


def test_names_fit_linux_limits_and_derive_from_the_cluster_name():
    cfg = ClusterConfig(name="mc", nodes=3)
    assert cfg.bridge == "mc-br0" and len(cfg.bridge) <= 15
    assert [cfg.node_name(i) for i in (1, 2, 3)] == ["mc-node-1", "mc-node-2", "mc-node-3"]
    assert all(len(cfg.veth(i)) <= 15 for i in range(1, 64))
    assert cfg.gateway_ip == "10.250.0.1" and cfg.node_ip(1) == "10.250.0.2"


def test_default_ranges_do_not_overlap_each_other_or_dockers():
    cfg = ClusterConfig()
    nets = [ipaddress.IPv4Network(r) for r in cfg.ranges()]
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            assert not a.overlaps(b)
    docker = [ipaddress.IPv4Network("172.16.0.0/12"), ipaddress.IPv4Network("192.168.0.0/16")]
    assert not any(n.overlaps(d) for n in nets for d in docker)
    assert ipaddress.IPv4Address(cfg.dns_service_ip) in ipaddress.IPv4Network(cfg.service_cidr)


def test_every_node_runs_an_agent_and_a_proxy_in_its_namespace():
    cfg = ClusterConfig(nodes=2)
    comps = all_components(cfg)
    for i in (1, 2):
        mine = [c for c in comps if c.netns == cfg.node_netns(i)]
        assert sorted(c.argv[2] for c in mine) == ["services.nodeagent", "services.proxy"]
        agent = next(c for c in mine if c.argv[2] == "services.nodeagent")
        assert cfg.node_ip(i) in agent.argv
        assert str(cfg.component_kubeconfig(f"nodeagent-{cfg.node_name(i)}")) in agent.argv
    names = [c.name for c in comps]
    assert len(names) == len(set(names))
