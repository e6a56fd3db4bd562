"""The command line of every component of the local cluster, as a pure function of the
config. The supervisor runs these; compose.yaml's commands are checked against them."""
from __future__ import annotations

from dataclasses import dataclass, field

from cluster import registry
from cluster.config import HA_PORT_OFFSET, ClusterConfig


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    netns: str | None = None  # run inside this node namespace
    health: str | None = None  # URL answering 200 once ready (root namespace only)
    stage: int = 0  # started after everything of a lower stage is healthy
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def control_plane(cfg: ClusterConfig) -> list[Component]:
    py = cfg.python
    api = cfg.apiserver_url
    etcd_url = f"http://127.0.0.1:{cfg.etcd_client_port}"
    peer_url = f"http://127.0.0.1:{cfg.etcd_peer_port}"
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
            copies.append(Component(name if copy == 0 else f"{name}-2",
                                    (py, "-m", module, *kubeconfig(name), "--health-port", str(hp), *extra, *elect),
                                    health=f"http://127.0.0.1:{hp}/healthz", stage=2))
        return copies

    return [
        Component("etcd", ("etcd", "--name", "default", "--data-dir", str(cfg.state_dir / "etcd"),
                           "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                           "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                           "--initial-cluster", f"default={peer_url}",
                           "--max-request-bytes", str(4 * 1024 * 1024), "--log-level", "warn",
                           "--logger", "zap"),
                  health=f"{etcd_url}/health", stage=0),
        Component("apiserver", (py, "-m", "services.apiserver", "--etcd-servers",
                                f"127.0.0.1:{cfg.etcd_client_port}",
                                "--bind-address", f"127.0.0.1,{cfg.gateway_ip}",
                                "--port", str(cfg.apiserver_port),
                                "--advertise-address", cfg.gateway_ip,
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
                  health=f"{api}/readyz", stage=1),
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
        Component("dns", (py, "-m", "services.dns", *kubeconfig("dns"), "--listen", cfg.gateway_ip,
                          "--port", str(cfg.dns_port), "--metrics-port", str(port + 5)),
                  health=f"http://127.0.0.1:{port + 5}/readyz", stage=2),
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
