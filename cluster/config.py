"""The local cluster's shape: names, address ranges and ports, all derived from a few flags.

Everything the launcher creates is named from the cluster name, so `down` can find it
again after a crash even without the state file.
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path(os.environ.get("MINICLUSTER_STATE_DIR", "/var/lib/minicluster"))
ROUTE_PROTO = 252  # routes this project adds in the root namespace carry this protocol number
HA_PORT_OFFSET = 40  # the second copy of a controller serves health this far above the first
# with --ha, where the API servers' load balancer takes the user's connections (kind's
# external load balancer): a loopback address of its own, so it keeps the API server port
APISERVER_LB_IP = "127.0.0.2"


def copy_name(name: str, k: int) -> str:
    """Copy k (0-based) of a component: `name`, then `name-2`, `name-3`, ..."""
    return name if k == 0 else f"{name}-{k + 1}"


@dataclass
class ClusterConfig:
    name: str = "mc"
    nodes: int = 2
    state_dir: Path = DEFAULT_STATE_DIR
    # The nodes' "physical network" (a bridge in the root namespace), the pod range
    # split into one /24 per node, and the service range. Defaults avoid Docker's
    # 172.17.0.0/16 and the 172.18-31 and 192.168 ranges its networks use.
    node_cidr: str = "10.250.0.0/24"
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    node_cidr_mask: int = 24  # each node's pod range is a /24 of cluster_cidr
    apiserver_port: int = 6443
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    dns_port: int = 53
    health_base_port: int = 10300  # controllers' /healthz ports count up from here
    node_agent_port: int = 10250
    proxy_health_port: int = 10256
    netpol_health_port: int = 10258  # the NetworkPolicy agent's, in each node's namespace
    registry_port: int = 5000  # the cluster's image registry, on the gateway address (cluster/registry.py)
    node_grace_seconds: int = 40
    apiserver_sans: list[str] = field(default_factory=list)  # more names/addresses for its certificate
    # what runs the pods' containers: "runc" or "crun" (OCI images in the nodes' stores), or
    # "process" (host processes: each container's command on the node; its image is not run)
    container_runtime: str = "runc"
    # how every node's proxy programs Services: "iptables" chains or one "nftables" table
    proxy_mode: str = "iptables"
    # a control plane that survives losing any one of its processes: 3 etcd members, an API
    # server and a DNS server on each of two control-plane addresses (`control_plane_ips`),
    # and two copies of every controller and of the scheduler, each working only while it
    # holds its Lease (kube-controller-manager's --leader-elect); the second copy's health
    # port is its first's + HA_PORT_OFFSET
    ha: bool = False
    python: str = field(default_factory=lambda: os.environ.get("MINICLUSTER_PYTHON", "") or
                        str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"))

    # -- derived names ----------------------------------------------------------
    @property
    def control_plane_ips(self) -> list[str]:
        """Where the API servers and DNS servers serve the nodes, one of each per address: the
        gateway, and with --ha a second address on the bridge, the second-highest of the node
        network (above the load-balancer pool, which ends 5 below the broadcast address)."""
        ips = [self.gateway_ip]
        if self.ha:
            ips.append(str(ipaddress.IPv4Network(self.node_cidr).broadcast_address - 1))
        return ips

    @property
    def dns_ips(self) -> list[str]:
        return self.control_plane_ips

    @property
    def etcd_members(self) -> int:
        return 3 if self.ha else 1

    def etcd_ports(self, k: int) -> tuple[int, int]:
        """(client, peer) port of etcd member k (0-based): 2379/2380, 2381/2382, 2383/2384
        (each 2 above the member before)."""
        return self.etcd_client_port + 2 * k, self.etcd_peer_port + 2 * k

    def etcd_peer_url(self, k: int) -> str:
        """Member k's Raft address: HTTPS between the members of a cluster (kubeadm's etcd peer
        certificates, from the cluster CA), plain HTTP for a single member, which has no peers."""
        scheme = "https" if self.etcd_members > 1 else "http"
        return f"{scheme}://127.0.0.1:{self.etcd_ports(k)[1]}"

    @property
    def etcd_cluster_token(self) -> str:
        """--initial-cluster-token of a multi-member cluster (a single member takes etcd's default)."""
        return f"{self.name}-etcd"

    @property
    def etcd_initial_cluster(self) -> str:
        return ",".join(f"{self.etcd_member_name(k)}={self.etcd_peer_url(k)}" for k in range(self.etcd_members))

    def etcd_member_name(self, k: int) -> str:
        return "default" if self.etcd_members == 1 else f"etcd-{k + 1}"

    def etcd_data_dir(self, k: int) -> Path:
        return self.state_dir / copy_name("etcd", k)

    @property
    def etcd_endpoints(self) -> list[str]:
        return [f"127.0.0.1:{self.etcd_ports(k)[0]}" for k in range(self.etcd_members)]

    @property
    def dns_service_ip(self) -> str:
        """The tenth address of the service range, as kubeadm and kind choose it."""
        return str(ipaddress.IPv4Network(self.service_cidr).network_address + 10)

    @property
    def bridge(self) -> str:
        return f"{self.name}-br0"[:15]

    @property
    def gateway_ip(self) -> str:
        """The root namespace's address on the node network (control plane lives here)."""
        return str(ipaddress.IPv4Network(self.node_cidr).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.node_cidr).prefixlen

    def node_name(self, i: int) -> str:
        return f"{self.name}-node-{i}"

    def node_netns(self, i: int) -> str:
        return self.node_name(i)

    def node_ip(self, i: int) -> str:
        return str(ipaddress.IPv4Network(self.node_cidr).network_address + 1 + i)

    @property
    def load_balancer_pool(self) -> str:
        """The addresses the load-balancer controller hands out: the top of the node network
        (.200-.250 of a /24), above the gateway and every node's address."""
        net = ipaddress.IPv4Network(self.node_cidr)
        base = int(net.network_address)
        first = base + max(self.nodes + 2, net.num_addresses * 25 // 32)
        last = max(first, int(net.broadcast_address) - 5)
        return f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}"

    def veth(self, i: int) -> str:
        return f"{self.name}v{i}"[:15]

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def apiserver_url_for_nodes(self) -> str:
        return f"https://{self.gateway_ip}:{self.apiserver_port}"

    @property
    def apiserver_urls(self) -> list[str]:
        """Every API server, for clients on this machine (the first on loopback), in the order
        they try them."""
        return [self.apiserver_url] + [f"https://{ip}:{self.apiserver_port}" for ip in self.control_plane_ips[1:]]

    @property
    def user_servers(self) -> list[str]:
        """The API servers the user's kubeconfig names, in order: with --ha first the load
        balancer in front of them (all kubectl uses), then each server (minikubectl fails over)."""
        return ([self.apiserver_lb_url] if self.ha else []) + self.apiserver_urls

    @property
    def apiserver_lb_url(self) -> str:
        return f"https://{APISERVER_LB_IP}:{self.apiserver_port}"

    @property
    def apiserver_lb_health_port(self) -> int:
        return self.health_base_port + 12

    @property
    def apiserver_urls_for_nodes(self) -> list[str]:
        return [f"https://{ip}:{self.apiserver_port}" for ip in self.control_plane_ips]

    @property
    def registry_url(self) -> str:
        """The cluster's registry, which the nodes have as their mirror (plain HTTP, on the node network)."""
        return f"http://{self.gateway_ip}:{self.registry_port}"

    @property
    def registry_dir(self) -> Path:
        return self.state_dir / "registry"

    @property
    def dns_address(self) -> str:
        return f"{self.gateway_ip}:{self.dns_port}"

    @property
    def ui_port(self) -> int:
        """The live picture's port (services/netview), on loopback: the page has no login."""
        return self.health_base_port + 11

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}/"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def encryption_config(self) -> Path:
        """The API server's --encryption-provider-config (it holds the key: mode 0600), in a
        directory of its own: compose mounts it into the API server only."""
        return self.state_dir / "encryption" / "encryption-config.yaml"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"

    def component_kubeconfig(self, name: str) -> Path:
        """The kubeconfig a component runs with (its own identity)."""
        return self.state_dir / "kubeconfigs" / f"{name}.conf"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def launcher_log(self) -> Path:
        """The launcher's own log (its steps, warnings and any traceback); each component
        logs to `<log_dir>/<component>.log`."""
        return self.log_dir / "launcher.log"

    def node_dir(self, i: int) -> Path:
        return self.state_dir / "nodes" / self.node_name(i)

    def to_json(self) -> dict:
        d = asdict(self)
        d["state_dir"] = str(self.state_dir)
        return d

    @classmethod
    def from_json(cls, d: dict) -> ClusterConfig:
        d = dict(d)
        d["state_dir"] = Path(d["state_dir"])
        return cls(**d)

    def ranges(self) -> list[str]:
        return [self.node_cidr, self.cluster_cidr, self.service_cidr]


def load_state(state_dir: Path) -> dict | None:
    path = state_dir / "cluster.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
