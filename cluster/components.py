"""The command line of every component of the local cluster, as a pure function of the
config. The supervisor runs these; compose.yaml's commands are checked against them."""
from __future__ import annotations

from dataclasses import dataclass, field

from cluster import registry
from cluster.config import APISERVER_LB_IP, HA_PORT_OFFSET, ClusterConfig, copy_name


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    netns: str | None = None  # run inside this node namespace
    health: str | None = None  # URL answering 200 once ready (root namespace only)
    stage: int = 0  # started after everything of a lower stage is healthy
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def etcd_members(cfg: ClusterConfig) -> list[Component]:
    """One etcd member, or with --ha three forming one Raft cluster on loopback."""
    members = []
    for k in range(cfg.etcd_members):
        client_url, peer_url = f"http://127.0.0.1:{cfg.etcd_ports(k)[0]}", cfg.etcd_peer_url(k)
        peer_tls: tuple[str, ...] = ()
        if cfg.etcd_members > 1:  # the members authenticate each other with certificates of the CA
            pair = cfg.pki_dir / f"etcd-peer-{cfg.etcd_member_name(k)}"
            peer_tls = ("--initial-cluster-token", cfg.etcd_cluster_token,
                        "--peer-cert-file", f"{pair}.crt", "--peer-key-file", f"{pair}.key",
                        "--peer-trusted-ca-file", str(cfg.ca_file), "--peer-client-cert-auth")
        members.append(Component(
            copy_name("etcd", k),
            ("etcd", "--name", cfg.etcd_member_name(k), "--data-dir", str(cfg.etcd_data_dir(k)),
             "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", cfg.etcd_initial_cluster, *peer_tls,
             "--max-request-bytes", str(4 * 1024 * 1024), "--log-level", "warn",
             "--logger", "zap"),
            health=f"{client_url}/health", stage=0))
    return members


def apiservers(cfg: ClusterConfig) -> list[Component]:
    """An API server on each control-plane address (the first also on loopback), all over
    the same etcd members; each lists itself in the kubernetes Service while it lives."""
    pki = cfg.pki_dir
    servers = []
    for k, address in enumerate(cfg.control_plane_ips):
        bind = f"127.0.0.1,{address}" if k == 0 else address
        servers.append(Component(
            copy_name("apiserver", k),
            (cfg.python, "-m", "services.apiserver", "--etcd-servers", ",".join(cfg.etcd_endpoints),
             "--bind-address", bind,
             "--port", str(cfg.apiserver_port),
             "--advertise-address", address,
             "--service-cluster-ip-range", cfg.service_cidr,
             "--cluster-cidr", cfg.cluster_cidr,
             "--tls-cert-file", str(pki / "apiserver.crt"),
             "--tls-private-key-file", str(pki / "apiserver.key"),
             "--client-ca-file", str(pki / "ca.crt"),
             "--service-account-key-file", str(pki / "sa.pub"),
             "--service-account-signing-key-file", str(pki / "sa.key"),
             "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
             "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
             "--kubelet-certificate-authority", str(pki / "ca.crt"),
             "--node-cidr-mask-size", str(cfg.node_cidr_mask),
             "--node-network", cfg.node_cidr,
             "--kubelet-port", str(cfg.node_agent_port),
             "--encryption-provider-config", str(cfg.encryption_config)),
            health=(cfg.apiserver_url if k == 0 else f"https://{address}:{cfg.apiserver_port}") + "/readyz",
            stage=1))
    return servers


def apiserver_lb(cfg: ClusterConfig) -> list[Component]:
    """With --ha, the load balancer in front of the API servers that the user's kubeconfig
    names (services/apiserverlb; kind's external load balancer)."""
    if not cfg.ha:
        return []
    hp = cfg.apiserver_lb_health_port
    backends = [a for ip in cfg.control_plane_ips for a in ("--backend", f"{ip}:{cfg.apiserver_port}")]
    return [Component("apiserver-lb", (cfg.python, "-m", "services.apiserverlb",
                                       "--listen", f"{APISERVER_LB_IP}:{cfg.apiserver_port}", *backends,
                                       "--ca-file", str(cfg.ca_file), "--health-port", str(hp)),
                      health=f"http://127.0.0.1:{hp}/readyz", stage=2)]


def dns_servers(cfg: ClusterConfig) -> list[Component]:
    """A DNS server on each control-plane address, the kube-dns Service's endpoints."""
    out = []
    for k, address in enumerate(cfg.dns_ips):
        metrics = cfg.health_base_port + 5 + k * HA_PORT_OFFSET
        out.append(Component(
            copy_name("dns", k),
            (cfg.python, "-m", "services.dns", "--kubeconfig", str(cfg.component_kubeconfig("dns")),
             "--listen", address, "--port", str(cfg.dns_port), "--metrics-port", str(metrics)),
            health=f"http://127.0.0.1:{metrics}/readyz", stage=2))
    return out


def control_plane(cfg: ClusterConfig) -> list[Component]:
    py = cfg.python
    port = cfg.health_base_port
    pki = cfg.pki_dir

    def kubeconfig(name: str) -> tuple[str, str]:
        return "--kubeconfig", str(cfg.component_kubeconfig(name))

    def controller(name: str, module: str, offset: int, *extra: str, lease: str = "") -> list[Component]:
        """One copy, or with --ha two that elect a leader through the Lease `lease` (default:
        the component's name; the scheduler's is kube's `kube-scheduler`), with one identity."""
        copies = []
        for copy in range(2 if cfg.ha else 1):
            hp = port + offset + copy * HA_PORT_OFFSET
            elect = ("--leader-elect", "--leader-elect-resource-name", lease or name) if cfg.ha else ()
            copies.append(Component(copy_name(name, copy),
                                    (py, "-m", module, *kubeconfig(name), "--health-port", str(hp), *extra, *elect),
                                    health=f"http://127.0.0.1:{hp}/healthz", stage=2))
        return copies

    return [
        *etcd_members(cfg),
        *apiservers(cfg),
        *apiserver_lb(cfg),
        *controller("endpointslice", "services.endpointslice", 0),
        *controller("scheduler", "services.scheduler", 1, lease="kube-scheduler"),
        *controller("deployments", "services.deployments", 2),
        *controller("gc", "services.gc", 3),
        *controller("nodelifecycle", "services.nodelifecycle", 4,
                   "--grace", str(cfg.node_grace_seconds)),
        *controller("serviceaccounts", "services.serviceaccounts", 6,
                   "--root-ca-file", str(pki / "ca.crt")),
        *controller("statefulset", "services.statefulset", 7),
        *controller("daemonset", "services.daemonset", 8),
        *controller("loadbalancer", "services.loadbalancer", 10, "--pool", cfg.load_balancer_pool),
        *controller("jobs", "services.jobs", 9),
        Component("netview", (py, "-m", "services.netview", *kubeconfig("netview"), "--listen", "127.0.0.1",
                              "--port", str(cfg.ui_port)),
                  health=f"http://127.0.0.1:{cfg.ui_port}/readyz", stage=2),
        *dns_servers(cfg),
    ]


def node_components(cfg: ClusterConfig, i: int) -> list[Component]:
    py = cfg.python
    ns = cfg.node_netns(i)
    node = cfg.node_name(i)
    ndir = cfg.node_dir(i)
    def kubeconfig(name: str) -> tuple[str, str]:
        return "--kubeconfig", str(cfg.component_kubeconfig(name))

    mirrors = registry.mirror_flags(cfg.registry_url) if cfg.container_runtime != "process" else []
    return [
        Component(f"nodeagent-{node}", (py, "-m", "services.nodeagent", *kubeconfig(f"nodeagent-{node}"),
                                        "--node-name", node, "--node-ip", cfg.node_ip(i),
                                        "--state-dir", str(ndir), "--cni-bin-dir", "/usr/lib/cni",
                                        "--cni-conf-dir", str(ndir / "cni"),
                                        "--cluster-dns", cfg.dns_service_ip,
                                        "--cluster-cidr", cfg.cluster_cidr,
                                        "--node-cidr-mask-size", str(cfg.node_cidr_mask),
                                        "--node-network", cfg.node_cidr,
                                        "--port", str(cfg.node_agent_port),
                                        "--tls-cert-file", str(cfg.pki_dir / f"nodeagent-{node}-serving.crt"),
                                        "--tls-private-key-file", str(cfg.pki_dir / f"nodeagent-{node}-serving.key"),
                                        "--client-ca-file", str(cfg.ca_file),
                                        "--container-runtime", cfg.container_runtime,
                                        "--image-store-dir", str(ndir / "images"),
                                        # the node's policy agent, asked before a new pod's containers start
                                        "--network-policy-agent", f"http://127.0.0.1:{cfg.netpol_health_port}",
                                        *mirrors),
                  netns=ns, stage=3),
        Component(f"proxy-{node}", (py, "-m", "services.proxy", *kubeconfig(f"proxy-{node}"),
                                    "--node-name", node, "--cluster-cidr", cfg.cluster_cidr,
                                    "--proxy-mode", cfg.proxy_mode,
                                    "--service-cluster-ip-range", cfg.service_cidr,
                                    "--health-port", str(cfg.proxy_health_port),
                                    "--announce-interface", "eth0"),
                  netns=ns, stage=3),
        Component(f"netpol-{node}", (py, "-m", "services.netpol", *kubeconfig(f"netpol-{node}"),
                                     "--node-name", node, "--health-port", str(cfg.netpol_health_port)),
                  netns=ns, stage=3),
    ]


def image_registry(cfg: ClusterConfig) -> list[Component]:
    """The registry the nodes pull from (none for host processes, which pull nothing)."""
    if cfg.container_runtime == "process":
        return []
    return [Component("registry", registry.serve_argv(cfg.registry_dir / "config.yml"),
                      health=f"{cfg.registry_url}/v2/", stage=0)]


def all_components(cfg: ClusterConfig) -> list[Component]:
    out = control_plane(cfg) + image_registry(cfg)
    for i in range(1, cfg.nodes + 1):
        out += node_components(cfg, i)
    return out
