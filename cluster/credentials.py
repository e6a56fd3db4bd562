"""Who each component of the local cluster is: its certificate and its kubeconfig, made at
`cluster up` from the cluster PKI (`cluster.pki`), as kubeadm writes admin.conf,
scheduler.conf, kubelet.conf and the controller-manager's per-controller credentials.

Each process gets its own identity, and RBAC gives each only what it does:

    admin (the user's kubeconfig)  kubernetes-admin, group system:masters
    scheduler                      system:kube-scheduler
    endpointslice, gc, deployments, nodelifecycle, serviceaccounts, statefulset, daemonset,
    loadbalancer
    endpointslice, gc, deployments, nodelifecycle, serviceaccounts, jobs
                                   system:serviceaccount:kube-system:<controller>, the identities
                                   kube-controller-manager's controllers run as
    dns                            system:serviceaccount:kube-system:coredns
    netview (the live picture)     system:serviceaccount:kube-system:netview
    proxy                          system:kube-proxy
    node agent of node N           system:node:N, group system:nodes
    API server -> node agents      kube-apiserver-kubelet-client

Certificates are files under <state>/pki, kubeconfigs under <state>/kubeconfigs; the user's
kubeconfig (<state>/kubeconfig) embeds its certificates so it can be copied elsewhere.
"""
from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.config import APISERVER_LB_IP, ClusterConfig, copy_name
from cluster.pki import KeyPair, Pki
from kubecore.client.config import write_kubeconfig

NODES_GROUP = "system:nodes"


def service_account(name: str) -> str:
    return f"system:serviceaccount:kube-system:{name}"


# component name -> (user, groups)
CONTROL_PLANE_IDENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "scheduler": ("system:kube-scheduler", ()),
    "endpointslice": (service_account("endpointslice-controller"), ()),
    "deployments": (service_account("deployment-controller"), ()),
    "gc": (service_account("generic-garbage-collector"), ()),
    "nodelifecycle": (service_account("node-controller"), ()),
    "serviceaccounts": (service_account("service-account-controller"), ()),
    "statefulset": (service_account("statefulset-controller"), ()),
    "daemonset": (service_account("daemon-set-controller"), ()),
    "loadbalancer": (service_account("service-controller"), ()),
    "jobs": (service_account("job-controller"), ()),
    "dns": (service_account("coredns"), ()),
    "netview": (service_account("netview"), ()),
}
PROXY_IDENTITY: tuple[str, tuple[str, ...]] = ("system:kube-proxy", ())
NETPOL_IDENTITY: tuple[str, tuple[str, ...]] = ("system:netpol-agent", ())


def node_identity(node: str) -> tuple[str, tuple[str, ...]]:
    return f"system:node:{node}", (NODES_GROUP,)


@dataclass(frozen=True)
class ClusterCredentials:
    pki: Pki
    apiserver: KeyPair
    kubelet_client: KeyPair


def kubernetes_service_ip(cfg: ClusterConfig) -> str:
    return str(ipaddress.IPv4Network(cfg.service_cidr).network_address + 1)


def make(cfg: ClusterConfig, *, extra_sans: tuple[str, ...] = (), servers: Sequence[str] = (),
         node_servers: Sequence[str] = (), node_ips: dict[int, str] | None = None) -> ClusterCredentials:
    """The PKI and every component's kubeconfig for `cfg` (the CA kept if there is one).
    `servers`, `node_servers` and `node_ips` replace the local cluster's addresses (compose)."""
    pki = Pki.create(cfg.pki_dir)
    servers = list(servers or cfg.apiserver_urls)
    node_servers = list(node_servers or cfg.apiserver_urls_for_nodes)
    node_ips = node_ips or {i: cfg.node_ip(i) for i in range(1, cfg.nodes + 1)}
    ips = [*cfg.control_plane_ips, kubernetes_service_ip(cfg), *([APISERVER_LB_IP] if cfg.ha else [])]
    names: list[str] = []
    for san in extra_sans:
        try:
            ips.append(str(ipaddress.ip_address(san)))
        except ValueError:
            names.append(san)
    creds = ClusterCredentials(pki=pki, apiserver=pki.apiserver(ips=ips, dns_names=names),
                               kubelet_client=pki.kubelet_client())
    if cfg.etcd_members > 1:
        for k in range(cfg.etcd_members):
            pki.etcd_peer(cfg.etcd_member_name(k))
    admin = pki.admin()
    write_kubeconfig(cfg.kubeconfig, name=cfg.name, servers=servers, ca_file=pki.ca.cert,
                     cert_file=admin.cert, key_file=admin.key, embed=True)
    cfg.component_kubeconfig("x").parent.mkdir(parents=True, exist_ok=True)
    for component, (user, groups) in CONTROL_PLANE_IDENTITIES.items():
        _component(cfg, pki, component, user, groups, servers)
    for i in range(1, cfg.nodes + 1):
        node = cfg.node_name(i)
        _component(cfg, pki, f"nodeagent-{node}", *node_identity(node), node_servers)
        _component(cfg, pki, f"proxy-{node}", *PROXY_IDENTITY, node_servers)
        _component(cfg, pki, f"netpol-{node}", *NETPOL_IDENTITY, node_servers)
        pki.serving(f"nodeagent-{node}-serving", f"system:node:{node}", ips=[node_ips[i]],
                    dns_names=[node])
    return creds


def _component(cfg: ClusterConfig, pki: Pki, component: str, user: str,
               groups: tuple[str, ...], servers: Sequence[str]) -> None:
    pair = pki.client(f"{component}-client", user, list(groups))
    write_kubeconfig(cfg.component_kubeconfig(component), name=cfg.name, servers=servers,
                     ca_file=pki.ca.cert, cert_file=pair.cert, key_file=pair.key)


def main(argv: list[str] | None = None) -> int:
    """`python -m cluster.credentials --compose`: the PKI and kubeconfigs of the compose
    cluster (compose.yaml runs it once, into the volume every service mounts)."""
    import argparse

    from cluster.compose import COMPOSE_APISERVER_IPS, COMPOSE_APISERVER_URLS, COMPOSE_NODE_IPS, compose_config

    p = argparse.ArgumentParser(prog="python -m cluster.credentials")
    p.add_argument("--compose", action="store_true", required=True)
    p.add_argument("--ha", action="store_true", help="for compose.ha.yaml: two API servers, three etcd members")
    a = p.parse_args(argv)
    cfg = compose_config(a.ha)
    count = len(cfg.control_plane_ips)
    servers = COMPOSE_APISERVER_URLS[:count]
    names = tuple(copy_name("apiserver", k) for k in range(count))  # the services' names
    make(cfg, extra_sans=(*names, *COMPOSE_APISERVER_IPS[:count]), servers=servers,
         node_servers=servers, node_ips=COMPOSE_NODE_IPS)
    sys.stdout.write(f"credentials written under {cfg.state_dir}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

