"""Settings of the API server (flags of `python -m services.apiserver`)."""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field

from kubecore.api.nodenet import NodeRanges


@dataclass
class Settings:
    etcd_endpoints: list[str] = field(default_factory=lambda: ["127.0.0.1:2379"])
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = ""
    service_cidr: str = "10.96.0.0/12"
    node_port_range: str = "30000-32767"
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask: int = 24
    # The nodes' own network (--node-network): when set, a Node's InternalIP/ExternalIP must
    # be in it, and the server dials node agents only there. Empty: any plain IP address.
    node_cidr: str = ""
    # Where node agents listen (--kubelet-port): the server dials <InternalIP>:<this port>
    # and never a port a Node object names.
    kubelet_port: int = 10250
    max_body_bytes: int = 3 * 1024 * 1024
    body_timeout: float = 60.0  # seconds a request body may take to arrive (408 after)
    # requests in flight per client (kube's limits, which it applies to the whole server;
    # 0: no limit), and watches and other long-running requests per client
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    max_watches_per_client: int = 2000
    watch_window: int = 50_000
    watcher_buffer: int = 20_000
    bookmark_interval: float = 10.0
    pod_force_delete_after: float = 30.0  # extra seconds past a pod's grace period
    sweep_interval: float = 2.0
    event_ttl: float = 3600.0  # seconds an Event is kept after its last occurrence
    event_sweep_interval: float = 60.0
    create_default_service: bool = True
    # the kubernetes Service's endpoints (kube's --endpoint-reconciler-type: "lease" publishes
    # every API server whose master lease is alive, "none" leaves them to someone else), how
    # often each server refreshes its lease and reconciles, and the lease's life (kube-apiserver
    # fixes these at 10 s and 15 s)
    endpoint_reconciler_type: str = "lease"
    endpoint_reconciler_interval: float = 10.0
    master_lease_ttl: int = 15
    # how often etcd's history is compacted (kube's --etcd-compaction-interval; 0: never)
    etcd_compaction_interval: float = 300.0
    # gRPC keepalive on the etcd connection, as kube-apiserver's etcd client sets it: a ping
    # after this many seconds without data, the connection given up if it goes unanswered
    etcd_keepalive_time: float = 30.0
    etcd_keepalive_timeout: float = 10.0
    # TLS and who may call (kube-apiserver's flags of the same names)
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""  # clients presenting a certificate this CA signed are authenticated
    anonymous_auth: bool = True  # anonymous requests allowed on the health and version paths
    authorization_mode: str = "Node,RBAC"  # the authorizers in order: Node, RBAC, AlwaysAllow
    service_account_key_file: str = ""  # verifies ServiceAccount tokens
    service_account_signing_key_file: str = ""  # signs them
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    api_audiences: list[str] = field(default_factory=list)  # default: the issuer
    kubelet_client_certificate: str = ""  # presented to the node agents
    kubelet_client_key: str = ""
    kubelet_certificate_authority: str = ""  # verifies the node agents' serving certificates
    # kube-apiserver's --encryption-provider-config: an EncryptionConfiguration file saying
    # which resources are encrypted in etcd, and with which keys ("": none)
    encryption_provider_config: str = ""
    # Pod Security Admission where a namespace has no pod-security.kubernetes.io labels: the
    # level enforced (and warned about on workloads); namespaces never checked
    pod_security_default_enforce: str = "baseline"
    pod_security_exempt_namespaces: list[str] = field(default_factory=lambda: ["kube-system"])

    # ServiceAccount tokens beyond the key pair: where the discovery document says the keys
    # are (none: this server), the longest life a TokenRequest may ask (0: any), and kube's
    # year-long life for the projected tokens of pods (their refresh is due at 3607 s)
    service_account_jwks_uri: str = ""
    service_account_max_token_expiration: float = 0.0
    service_account_extend_token_expiration: bool = True
    # admission plugins left out of the chain (kube's --disable-admission-plugins), e.g.
    # ServiceAccount where no controller makes the `default` ServiceAccounts
    disable_admission_plugins: list[str] = field(default_factory=list)

    def node_ranges(self) -> NodeRanges:
        return NodeRanges.parse(self.cluster_cidr, self.node_cidr_mask, self.node_cidr)


AUTHORIZATION_MODES = ("AlwaysAllow", "Node", "RBAC")


def authorization_modes(text: str) -> list[str]:
    """The modes of --authorization-mode, checked as kube-apiserver checks them."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes:
        raise argparse.ArgumentTypeError("at least one authorization-mode must be passed")
    for mode in modes:
        if mode not in AUTHORIZATION_MODES:
            raise argparse.ArgumentTypeError(
                f'authorization-mode "{mode}" is not a valid mode (valid: {",".join(AUTHORIZATION_MODES)})')
        if modes.count(mode) > 1:
            raise argparse.ArgumentTypeError(f'authorization-mode "{mode}" has mode specified more than once')
    return modes


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds from a Go duration as kube-apiserver's flags take them (`1h`, `1h0m0s`,
    `90s`, `1.5h`); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 1h, 30m, 1h0m0s)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _endpoint_list(text: str) -> list[str]:
    return [e.strip() for e in text.split(",") if e.strip()]


def etcd_endpoints_problem(endpoints: list[str]) -> str:
    """Why `endpoints` cannot be dialled ("" if they can): each is host:port (http:// allowed),
    and several are dialled as one gRPC channel over IPv4 addresses, so then each host is one."""
    if not endpoints:
        return "no endpoint given"
    for endpoint in endpoints:
        host, _, port = endpoint.removeprefix("http://").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return f"{endpoint!r} is not host:port"
        if len(endpoints) > 1:
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                return f"{endpoint!r}: with several members give each as an IPv4 address and port"
    return ""


def _check(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Flags that parse yet cannot work: a one-line error and exit 2 (argparse's)."""
    if not a.bookmark_interval > 0:
        p.error("--bookmark-interval must be greater than 0")
    if not a.endpoint_reconciler_interval > 0 or a.master_lease_ttl < 1:
        p.error("--endpoint-reconciler-interval and --master-lease-ttl must be greater than 0")
    if a.etcd_compaction_interval < 0:
        p.error("--etcd-compaction-interval must not be negative")
    try:
        authorization_modes(a.authorization_mode)
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    for flag in ("tls_cert_file", "tls_private_key_file", "client_ca_file",
                 "service_account_key_file", "service_account_signing_key_file",
                 "kubelet_client_certificate", "kubelet_client_key", "kubelet_certificate_authority"):
        path = getattr(a, flag)
        if path and not os.path.isfile(path):
            p.error(f"--{flag.replace('_', '-')}: {path}: no such file")
    if not 1 <= a.kubelet_port <= 65535:
        p.error("--kubelet-port must be between 1 and 65535")
    problem = etcd_endpoints_problem(a.etcd_servers)
    if problem:
        p.error(f"--etcd-servers: {problem}")
    try:
        NodeRanges.parse(a.cluster_cidr, a.node_cidr_mask_size, a.node_network)
    except ValueError as exc:
        p.error(f"--cluster-cidr, --node-cidr-mask-size, --node-network: {exc}")


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="apiserver", description="Kubernetes API server over etcd")
    p.add_argument("--etcd-servers", default="127.0.0.1:2379", type=_endpoint_list,
                   help="comma-separated etcd client endpoints (host:port)")
    p.add_argument("--bind-address", default="127.0.0.1",
                   help="address to listen on; several separated by commas")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--advertise-address", default="",
                   help="address of this server published in the default/kubernetes service")
    p.add_argument("--endpoint-reconciler-type", default="lease", choices=("lease", "none"),
                   help="lease: the kubernetes Service lists every API server alive (default); "
                   "none: its endpoints are left alone")
    p.add_argument("--endpoint-reconciler-interval", type=parse_duration, default=10.0,
                   help="how often this server refreshes its master lease and reconciles the "
                   "kubernetes Service's endpoints (default 10s, kube-apiserver's)")
    p.add_argument("--master-lease-ttl", type=int, default=15,
                   help="seconds a server stays listed after its last refresh (default 15)")
    p.add_argument("--etcd-compaction-interval", type=parse_duration, default=300.0,
                   help="the interval of compaction requests to etcd (default 5m; 0 disables)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--service-node-port-range", default="30000-32767")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod range, split per node")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--node-network", default="",
                   help="the nodes' network (CIDR): InternalIPs must be in it (empty: no check)")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="the port of the node agents, dialled for pods/log and pods/exec")
    p.add_argument("--bookmark-interval", type=float, default=10.0,
                   help="seconds between BOOKMARK events on watches that allow them")
    p.add_argument("--event-ttl", type=parse_duration, default=3600.0,
                   help="how long Events are kept after their last occurrence (default 1h)")
    p.add_argument("--tls-cert-file", required=True,
                   help="the serving certificate (PEM); the server speaks HTTPS only")
    p.add_argument("--tls-private-key-file", required=True)
    p.add_argument("--client-ca-file", default="",
                   help="CA whose client certificates authenticate (CN = user, O = groups)")
    p.add_argument("--anonymous-auth", default="true", choices=["true", "false"],
                   help="allow unauthenticated requests to /healthz, /livez, /readyz, /version")
    p.add_argument("--authorization-mode", default="Node,RBAC",
                   help="comma-separated authorizers, asked in order: Node, RBAC, AlwaysAllow")
    p.add_argument("--service-account-key-file", default="",
                   help="public (or private) key, PEM, that verifies ServiceAccount tokens")
    p.add_argument("--service-account-signing-key-file", default="",
                   help="private key, PEM, that signs ServiceAccount tokens")
    p.add_argument("--service-account-issuer", default="https://kubernetes.default.svc.cluster.local")
    p.add_argument("--api-audiences", default="",
                   help="comma-separated audiences of this API (default: the issuer)")
    p.add_argument("--kubelet-client-certificate", default="")
    p.add_argument("--kubelet-client-key", default="")
    p.add_argument("--kubelet-certificate-authority", default="")
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="read-only requests one client may have in flight (0: no limit)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="mutating requests one client may have in flight (0: no limit)")
    p.add_argument("--max-watches-per-client", type=int, default=2000,
                   help="watches and other long-running requests per client (0: no limit)")
    p.add_argument("--encryption-provider-config", default="",
                   help="EncryptionConfiguration file: the resources encrypted at rest in etcd "
                   "and their providers (aesgcm, aescbc, identity)")
    p.add_argument("--pod-security-default-enforce", default="baseline",
                   choices=("privileged", "baseline", "restricted"),
                   help="Pod Security level enforced in namespaces without a "
                   "pod-security.kubernetes.io/enforce label (default baseline)")
    p.add_argument("--pod-security-exempt-namespaces", default="kube-system",
                   help="comma-separated namespaces Pod Security Admission does not check")
    p.add_argument("--service-account-jwks-uri", default="",
                   help="the jwks_uri of /.well-known/openid-configuration (default: this server)")
    p.add_argument("--service-account-max-token-expiration", type=parse_duration, default=0.0,
                   help="the longest life a TokenRequest may give a token (default: no limit)")
    p.add_argument("--disable-admission-plugins", default="",
                   help="comma-separated admission plugins to leave out (e.g. ServiceAccount)")
    a = p.parse_args(argv)
    _check(p, a)
    return Settings(
        etcd_endpoints=a.etcd_servers,
        bind_address=a.bind_address, port=a.port, advertise_address=a.advertise_address,
        endpoint_reconciler_type=a.endpoint_reconciler_type,
        endpoint_reconciler_interval=a.endpoint_reconciler_interval,
        master_lease_ttl=a.master_lease_ttl, etcd_compaction_interval=a.etcd_compaction_interval,
        service_cidr=a.service_cluster_ip_range, node_port_range=a.service_node_port_range,
        cluster_cidr=a.cluster_cidr, node_cidr_mask=a.node_cidr_mask_size,
        node_cidr=a.node_network, kubelet_port=a.kubelet_port,
        bookmark_interval=a.bookmark_interval, event_ttl=a.event_ttl,
        tls_cert_file=a.tls_cert_file, tls_private_key_file=a.tls_private_key_file,
        client_ca_file=a.client_ca_file, anonymous_auth=a.anonymous_auth == "true",
        authorization_mode=a.authorization_mode,
        service_account_key_file=a.service_account_key_file,
        service_account_signing_key_file=a.service_account_signing_key_file,
        service_account_issuer=a.service_account_issuer,
        api_audiences=[x.strip() for x in a.api_audiences.split(",") if x.strip()],
        kubelet_client_certificate=a.kubelet_client_certificate,
        kubelet_client_key=a.kubelet_client_key,
        kubelet_certificate_authority=a.kubelet_certificate_authority,
        max_requests_inflight=a.max_requests_inflight,
        max_mutating_requests_inflight=a.max_mutating_requests_inflight,
        max_watches_per_client=a.max_watches_per_client,
        encryption_provider_config=a.encryption_provider_config,
        pod_security_default_enforce=a.pod_security_default_enforce,
        pod_security_exempt_namespaces=[n.strip() for n in a.pod_security_exempt_namespaces.split(",")
                                        if n.strip()],
        service_account_jwks_uri=a.service_account_jwks_uri,
        service_account_max_token_expiration=a.service_account_max_token_expiration,
        disable_admission_plugins=[x.strip() for x in a.disable_admission_plugins.split(",") if x.strip()],
    )


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """HTTPS with the serving certificate; a client certificate is asked for and, when one
    is presented, verified against the client CA (Go's VerifyClientCertIfGiven)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.tls_cert_file, settings.tls_private_key_file)
    if settings.client_ca_file:
        ctx.load_verify_locations(settings.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
