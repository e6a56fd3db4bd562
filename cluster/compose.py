"""What compose.yaml must run: the launcher's component commands, translated to the
compose network (service names instead of the local bridge's addresses). The test in
tests/cluster checks compose.yaml against this, so the two cannot drift apart."""
from __future__ import annotations

from pathlib import Path

from cluster.components import Component, control_plane, etcd_members, image_registry, node_components
from cluster.config import APISERVER_LB_IP, ClusterConfig, copy_name

COMPOSE_NODE_IPS = {1: "10.250.0.11", 2: "10.250.0.12"}
# the API servers and DNS servers on the nodes network: `apiserver` and `dns`, and with
# compose.ha.yaml `apiserver-2` and `dns-2` (the local cluster's control-plane addresses)
COMPOSE_APISERVER_IPS = ("10.250.0.4", "10.250.0.7")
COMPOSE_DNS_IPS = ("10.250.0.5", "10.250.0.8")
COMPOSE_APISERVER_URLS = ("https://apiserver:6443", "https://apiserver-2:6443")
COMPOSE_REGISTRY_URL = "http://10.250.0.6:5000"  # the registry service's address on the nodes network
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380  # etcd's own, in each member's container
# compose.ha.yaml's etcd members on the store network (10.250.1.0/24): the API servers' gRPC
# client lists several members by address only (one member, compose.yaml's, by its service name)
COMPOSE_ETCD_IPS = ("10.250.1.11", "10.250.1.12", "10.250.1.13")


def compose_config(ha: bool = False) -> ClusterConfig:
    return ClusterConfig(name="mc", nodes=2, state_dir=Path("/var/lib/minicluster"), python="python", ha=ha)


def translate(cfg: ClusterConfig, argv: tuple[str, ...], node: int | None = None) -> list[str]:
    hosts = COMPOSE_ETCD_IPS[:cfg.etcd_members] if cfg.etcd_members > 1 else ("etcd",)
    etcd = ",".join(f"{host}:{ETCD_CLIENT_PORT}" for host in hosts)
    subst = {
        ",".join(cfg.etcd_endpoints): etcd,
        f"127.0.0.1,{cfg.gateway_ip}": "0.0.0.0",
    }
    for k, url in enumerate(cfg.apiserver_urls):
        subst[url] = subst[cfg.apiserver_urls_for_nodes[k]] = COMPOSE_APISERVER_URLS[k]
    subst |= {f"{registry}={cfg.registry_url}": f"{registry}={COMPOSE_REGISTRY_URL}"
              for registry in ("docker.io", "registry.k8s.io")}
    # the API servers' load balancer (compose.ha.yaml): its own container, the servers' addresses
    subst[f"{APISERVER_LB_IP}:{cfg.apiserver_port}"] = "0.0.0.0:6443"
    subst |= {f"{ip}:{cfg.apiserver_port}": f"{COMPOSE_APISERVER_IPS[k]}:6443"
              for k, ip in enumerate(cfg.control_plane_ips)}
    control_plane = cfg.control_plane_ips
    out = []
    for i, arg in enumerate(argv):
        value = subst.get(arg, arg)
        flag = argv[i - 1] if i else ""
        if arg in control_plane and flag in ("--listen", "--bind-address"):
            value = "0.0.0.0"  # every address of its own container
        if arg in control_plane and flag == "--advertise-address":
            value = COMPOSE_APISERVER_IPS[control_plane.index(arg)]
        if arg == "127.0.0.1" and flag == "--listen":
            # loopback-only on the machine; in its container, every address of the container,
            # and compose publishes it on the machine's loopback only (compose.yaml)
            value = "0.0.0.0"
        if node is not None and arg == cfg.node_ip(node):
            value = COMPOSE_NODE_IPS[node]
        out.append(value)
    return out


def etcd_command(cfg: ClusterConfig, k: int) -> list[str]:
    """Member k of a multi-member etcd (compose.ha.yaml): the launcher's command with its
    addresses in its own container. Members reach each other by their names (etcd-1, ...,
    the names in their peer certificates: the first member's service, `etcd`, has that
    alias), the API servers by their fixed addresses (COMPOSE_ETCD_IPS)."""
    member = cfg.etcd_member_name(k)
    by_flag = {
        "--data-dir": "/etcd-data",
        "--listen-client-urls": f"http://0.0.0.0:{ETCD_CLIENT_PORT}",
        "--advertise-client-urls": f"http://{COMPOSE_ETCD_IPS[k]}:{ETCD_CLIENT_PORT}",
        "--listen-peer-urls": f"https://0.0.0.0:{ETCD_PEER_PORT}",
        "--initial-advertise-peer-urls": f"https://{member}:{ETCD_PEER_PORT}",
        "--initial-cluster": ",".join(f"{cfg.etcd_member_name(m)}=https://{cfg.etcd_member_name(m)}:{ETCD_PEER_PORT}"
                                      for m in range(cfg.etcd_members)),
    }
    argv = etcd_members(cfg)[k].argv
    return [by_flag.get(argv[i - 1], arg) if i else arg for i, arg in enumerate(argv)]


def expected_commands(ha: bool = False) -> dict[str, list[str]]:
    """The command of every service the launcher also runs, by compose service name: of
    compose.yaml, or with `ha` of compose.yaml with compose.ha.yaml over it."""
    cfg = compose_config(ha)
    cmds: dict[str, list[str]] = {}
    if ha:
        cmds |= {copy_name("etcd", k): etcd_command(cfg, k) for k in range(cfg.etcd_members)}
    for comp in control_plane(cfg) + image_registry(cfg):
        if comp.name.startswith("etcd"):
            continue  # a single member: Debian's etcd, configured in compose.yaml itself
        cmds[comp.name] = translate(cfg, comp.argv)
    for i in (1, 2):
        for comp in node_components(cfg, i):
            kind = comp.name.split("-", 1)[0]
            argv = translate(cfg, comp.argv, i)
            if kind == "nodeagent":
                # the API server and DNS containers have no route to the nodes' pod ranges, so
                # pod traffic to them leaves with the node's address (services/nodeagent/masq.py)
                argv.append("--ip-masq")
            cmds[f"node{i}" if kind == "nodeagent" else f"node{i}-{kind}"] = argv
    return cmds


__all__ = ["expected_commands", "Component"]
