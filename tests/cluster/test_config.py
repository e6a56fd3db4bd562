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


def test_every_node_runs_an_agent_a_proxy_and_a_policy_agent_in_its_namespace():
    cfg = ClusterConfig(nodes=2)
    comps = all_components(cfg)
    for i in (1, 2):
        mine = [c for c in comps if c.netns == cfg.node_netns(i)]
        assert sorted(c.argv[2] for c in mine) == ["services.netpol", "services.nodeagent", "services.proxy"]
        agent = next(c for c in mine if c.argv[2] == "services.nodeagent")
        assert cfg.node_ip(i) in agent.argv
        assert str(cfg.component_kubeconfig(f"nodeagent-{cfg.node_name(i)}")) in agent.argv
    names = [c.name for c in comps]
    assert len(names) == len(set(names))


def flag(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_api_server_and_the_agents_are_told_the_ranges_nodes_must_fit(tmp_path):
    from cluster import credentials
    from services.apiserver.settings import parse_args as apiserver_args
    from services.nodeagent.__main__ import parse_args as agent_args

    cfg = ClusterConfig(nodes=1, node_cidr="10.251.0.0/24", cluster_cidr="10.245.0.0/16", state_dir=tmp_path)
    credentials.make(cfg)  # the certificates and kubeconfigs their flags name
    comps = {c.name: c for c in all_components(cfg)}
    api = apiserver_args(list(comps["apiserver"].argv[3:]))
    assert (api.cluster_cidr, api.node_cidr_mask, api.node_cidr, api.kubelet_port) == (
        "10.245.0.0/16", 24, "10.251.0.0/24", cfg.node_agent_port)
    agent = comps[f"nodeagent-{cfg.node_name(1)}"].argv
    assert flag(agent, "--port") == str(cfg.node_agent_port)
    ranges = agent_args(list(agent[3:]))
    assert (ranges.cluster_cidr, ranges.node_cidr_mask, ranges.node_network) == (
        "10.245.0.0/16", 24, "10.251.0.0/24")


def test_ha_runs_two_electing_copies_of_every_controller_on_their_own_health_ports():
    single = {c.name: c for c in all_components(ClusterConfig())}
    ha = {c.name: c for c in all_components(ClusterConfig(ha=True))}
    controllers = [n for n, c in single.items() if c.stage == 2 and n not in ("dns", "netview")]
    assert "scheduler" in controllers and "endpointslice" in controllers
    assert all("--leader-elect" not in c.argv for c in single.values())
    ports = set()
    for name in controllers:
        first, second = ha[name], ha[f"{name}-2"]
        for copy in (first, second):
            lease = copy.argv[copy.argv.index("--leader-elect-resource-name") + 1]
            assert lease == ("kube-scheduler" if name == "scheduler" else name)
            assert "--leader-elect" in copy.argv
            ports.add(copy.argv[copy.argv.index("--health-port") + 1])
        # one identity for both copies, as two kube-controller-managers share theirs
        assert first.argv[first.argv.index("--kubeconfig") + 1] == second.argv[second.argv.index("--kubeconfig") + 1]
    assert len(ports) == 2 * len(controllers), "every copy serves health on a port of its own"


def argv_value(comp, flag: str) -> str:
    return comp.argv[comp.argv.index(flag) + 1]


def test_ha_control_plane_is_three_etcd_members_and_an_apiserver_and_dns_per_address():
    single = {c.name: c for c in all_components(ClusterConfig())}
    assert not any(n.startswith(("etcd-", "apiserver-", "dns-")) for n in single)
    assert argv_value(single["etcd"], "--initial-cluster") == "default=http://127.0.0.1:2380"
    cfg = ClusterConfig(ha=True)
    ha = {c.name: c for c in all_components(cfg)}
    assert cfg.control_plane_ips == ["10.250.0.1", "10.250.0.254"]
    low, high = cfg.load_balancer_pool.split("-")
    assert ipaddress.ip_address(high) < ipaddress.ip_address("10.250.0.254"), "above the LB pool"
    members = [ha[n] for n in ("etcd", "etcd-2", "etcd-3")]
    initial = ("etcd-1=https://127.0.0.1:2380,etcd-2=https://127.0.0.1:2382,"
               "etcd-3=https://127.0.0.1:2384")
    assert all(argv_value(m, "--initial-cluster") == initial for m in members)
    for k, m in enumerate(members):  # Raft between members over TLS, each with its own certificate
        assert argv_value(m, "--peer-cert-file").endswith(f"/pki/etcd-peer-etcd-{k + 1}.crt")
        assert argv_value(m, "--peer-trusted-ca-file").endswith("/pki/ca.crt") and "--peer-client-cert-auth" in m.argv
    assert [argv_value(m, "--listen-client-urls") for m in members] == [
        "http://127.0.0.1:2379", "http://127.0.0.1:2381", "http://127.0.0.1:2383"]
    assert len({argv_value(m, "--data-dir") for m in members}) == 3
    assert all(m.stage == 0 for m in members)
    first, second = ha["apiserver"], ha["apiserver-2"]
    for server, address in ((first, "10.250.0.1"), (second, "10.250.0.254")):
        assert argv_value(server, "--etcd-servers") == "127.0.0.1:2379,127.0.0.1:2381,127.0.0.1:2383"
        assert argv_value(server, "--advertise-address") == address
        assert argv_value(server, "--port") == "6443"
    assert argv_value(first, "--bind-address") == "127.0.0.1,10.250.0.1"
    assert argv_value(second, "--bind-address") == "10.250.0.254"
    assert second.health == "https://10.250.0.254:6443/readyz"
    assert argv_value(ha["dns-2"], "--listen") == "10.250.0.254"
    assert argv_value(ha["dns"], "--metrics-port") != argv_value(ha["dns-2"], "--metrics-port")
    assert cfg.apiserver_urls == ["https://127.0.0.1:6443", "https://10.250.0.254:6443"]
    assert cfg.apiserver_urls_for_nodes == ["https://10.250.0.1:6443", "https://10.250.0.254:6443"]


def test_every_controller_process_may_hold_its_lease():
    """The API server's bootstrap RBAC lets each controller's identity create and renew the
    Lease its --ha copies elect through (the scheduler's is kube's own kube-scheduler)."""
    from cluster.credentials import CONTROL_PLANE_IDENTITIES
    from services.apiserver.authz.bootstrap import (
        CONTROLLER_LEASES,
        CONTROLLER_PROCESS_ACCOUNTS,
        SCHEDULER_RULES,
    )

    ha = [c for c in all_components(ClusterConfig(ha=True)) if "--leader-elect" in c.argv and not c.name.endswith("-2")]
    for comp in ha:
        lease = comp.argv[comp.argv.index("--leader-elect-resource-name") + 1]
        user = CONTROL_PLANE_IDENTITIES[comp.name][0]
        if comp.name == "scheduler":
            assert any("kube-scheduler" in (r.get("resourceNames") or ()) for r in SCHEDULER_RULES)
            continue
        assert lease in CONTROLLER_LEASES, lease
        assert user.rsplit(":", 1)[1] in CONTROLLER_PROCESS_ACCOUNTS, user
