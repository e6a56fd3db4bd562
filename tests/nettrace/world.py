"""The seed article's cluster as a trace sees it: two worker nodes, a client pod, the three
`test` pods behind Service `mysvc`, each node's packet filter as the proxy renders it and its
routes and veths as the node agent reports them."""
from __future__ import annotations

from typing import Any

from kubecore.nettrace.trace import World
from services.proxy.model import build_snapshot
from services.proxy.rules import NodeSettings, render
from tests.proxy.cases import ClusterState
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port

BUILTIN = {"nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"), "filter": ("INPUT", "FORWARD", "OUTPUT")}
NODES = {"kind-worker": ("172.18.0.3", "10.244.1.0/24"), "kind-worker2": ("172.18.0.4", "10.244.2.0/24")}
PODS = {  # name: (ip, node)
    "client": ("10.244.1.7", "kind-worker"),
    "test-lgqcq": ("10.244.1.2", "kind-worker"),
    "test-jcdzz": ("10.244.2.2", "kind-worker2"),
    "test-pjrjp": ("10.244.2.3", "kind-worker2"),
}


def saved(state: ClusterState, node: str = "kind-worker", extra: dict[str, list[str]] | None = None,
          counters: str = "[3:180]") -> str:
    """What `iptables-save -c` prints once the proxy has applied `state` (and `extra` rules first
    in the built-in chains)."""
    ruleset = render(build_snapshot(state.services, state.slices, node_name=node),
                     NodeSettings(node_name=node, cluster_cidr="10.244.0.0/16"))
    out = []
    for table in ruleset.tables():
        out.append(f"*{table.name}")
        out += [f":{chain} ACCEPT [0:0]" for chain in BUILTIN[table.name]]
        out += [f":{chain} - [0:0]" for chain in table.chains]
        out += (extra or {}).get(table.name, [])
        out += [f"[0:0] -A {j.chain} {j.spec()}" for j in ruleset.jumps if j.table == table.name]
        out += [f"{counters} {rule}" for rules in table.chains.values() for rule in rules]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def seed_state(*test_pods: str) -> ClusterState:
    names = test_pods or ("test-lgqcq", "test-jcdzz", "test-pjrjp")
    return ClusterState("seed", [service("mysvc", "10.96.62.22", [port(8080)]),
                                 service("kube-dns", "10.96.0.10", [port(53, name="dns", protocol="UDP")],
                                         namespace="kube-system")],
                        [endpoint_slice("mysvc", [endpoint(PODS[n][0], node=PODS[n][1]) for n in names],
                                        [slice_port(8080)]),
                         endpoint_slice("kube-dns", [endpoint("172.18.0.1", node=None)],
                                        [slice_port(53, name="dns", protocol="UDP")], namespace="kube-system")])


def pod(name: str) -> dict[str, Any]:
    ip, node = PODS[name]
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"nodeName": node, "containers": [
        {"name": "c", "ports": [{"containerPort": 8080, "name": "http"}]}]},
        "status": {"podIP": ip, "phase": "Running"}}


def node_obj(name: str) -> dict[str, Any]:
    ip, cidr = NODES[name]
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def veth(pod_name: str) -> str:
    return f"veth{pod_name[-5:]}"


def node_view(name: str, state: ClusterState, *, drop_routes: tuple[str, ...] = ()) -> dict[str, Any]:
    ip, cidr = NODES[name]
    routes = [{"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "type": 1},
              {"dst": "172.18.0.0/16", "dev": "eth0", "scope": 253, "src": ip, "type": 1}]
    for other, (other_ip, other_cidr) in NODES.items():
        if other != name:
            routes.append({"dst": other_cidr, "gateway": other_ip, "dev": "eth0", "type": 1})
    pods = []
    for pname, (pip, pnode) in PODS.items():
        if pnode == name:
            routes.append({"dst": f"{pip}/32", "dev": veth(pname), "scope": 253, "type": 1})
            pods.append({"namespace": "default", "name": pname, "ip": pip, "hostVeth": veth(pname),
                         "routes": [{"dst": "default", "gateway": cidr.replace("0/24", "1"), "dev": "eth0",
                                     "type": 1}]})
    routes = [r for r in routes if r["dst"] not in drop_routes]
    return {"node": name, "nodeIP": ip, "iptables": saved(state, name),
            "addresses": [{"address": ip, "prefixlen": 16, "dev": "eth0"},
                          {"address": cidr.replace("0/24", "1"), "prefixlen": 32, "dev": "lo"}],
            "routes": routes, "pods": pods}


def seed_world(state: ClusterState | None = None, **kw: Any) -> World:
    state = state or seed_state()
    return World(pods=[pod(n) for n in PODS], services=state.services, slices=state.slices,
                 nodes=[node_obj(n) for n in NODES],
                 node_views={n: node_view(n, state, **kw) for n in NODES})
