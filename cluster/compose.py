"""What compose.yaml must run: the launcher's component commands, translated to the
compose network (service names instead of the local bridge's addresses). The test in
tests/cluster checks compose.yaml against this, so the two cannot drift apart."""
from __future__ import annotations

from pathlib import Path

from cluster.components import Component, control_plane, image_registry, node_components
from cluster.config import ClusterConfig

COMPOSE_NODE_IPS = {1: "10.250.0.11", 2: "10.250.0.12"}
COMPOSE_APISERVER_URL = "https://apiserver:6443"
COMPOSE_APISERVER_IP = "10.250.0.4"  # the apiserver service's address on the nodes network
COMPOSE_REGISTRY_URL = "http://10.250.0.6:5000"  # the registry service's address on the nodes network


def compose_config() -> ClusterConfig:
    return ClusterConfig(name="mc", nodes=2, state_dir=Path("/var/lib/minicluster"), python="python")


def translate(cfg: ClusterConfig, argv: tuple[str, ...], node: int | None = None) -> list[str]:
    subst = {
        cfg.apiserver_url: COMPOSE_APISERVER_URL,
        cfg.apiserver_url_for_nodes: COMPOSE_APISERVER_URL,
        f"127.0.0.1:{cfg.etcd_client_port}": "etcd:2379",
        f"127.0.0.1,{cfg.gateway_ip}": "0.0.0.0",
    }
    subst |= {f"{registry}={cfg.registry_url}": f"{registry}={COMPOSE_REGISTRY_URL}"
              for registry in ("docker.io", "registry.k8s.io")}
    out = []
    for i, arg in enumerate(argv):
        value = subst.get(arg, arg)
        if arg == cfg.gateway_ip and argv[i - 1] in ("--listen", "--advertise-address"):
            value = "0.0.0.0" if argv[i - 1] == "--listen" else COMPOSE_APISERVER_IP
        if arg == "127.0.0.1" and argv[i - 1] == "--listen":
            # loopback-only on the machine; in its container, every address of the container,
            # and compose publishes it on the machine's loopback only (compose.yaml)
            value = "0.0.0.0"
        if node is not None and arg == cfg.node_ip(node):
            value = COMPOSE_NODE_IPS[node]
        out.append(value)
    return out


def expected_commands() -> dict[str, list[str]]:
    cfg = compose_config()
    cmds: dict[str, list[str]] = {}
    for comp in control_plane(cfg) + image_registry(cfg):
        if comp.name == "etcd":
            continue  # the official etcd image, configured in compose.yaml itself
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
