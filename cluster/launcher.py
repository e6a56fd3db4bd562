"""`cluster up`, `cluster down`, `cluster status`: the whole cluster on one machine,
nodes as network namespaces (no container engine needed)."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cluster import credentials, network
from cluster.components import all_components
from cluster.config import ClusterConfig, load_state
from cluster.encryption import write_config as write_encryption_config
from cluster.supervisor import Supervisor, _alive, end_processes, http_ok, marked

log = logging.getLogger("cluster")


class LaunchError(RuntimeError):
    pass


# --- preflight --------------------------------------------------------------------------

def preflight(cfg: ClusterConfig) -> None:
    if os.geteuid() != 0:
        raise LaunchError("the local cluster needs root (network namespaces, CNI, iptables)")
    for binary in ("etcd", "ip", "nsenter", "iptables-restore"):
        if shutil.which(binary) is None:
            raise LaunchError(f"{binary} not found: run `make setup` (installs the Debian packages)")
    if not Path("/usr/lib/cni/ptp").exists():
        raise LaunchError("the CNI plugins are missing (/usr/lib/cni): install containernetworking-plugins")
    if not Path(cfg.python).exists():
        raise LaunchError(f"{cfg.python} not found: run `make setup` (creates the .venv)")
    clashes = network.overlapping_routes(cfg)
    if clashes:
        raise LaunchError("a cluster range overlaps a route of this machine: " + "; ".join(clashes)
                          + " (choose other ranges with --node-cidr/--cluster-cidr/--service-cidr)")
    if network.forwarding_enabled():
        log.warning("IPv4 forwarding is on in the root namespace (not by us); nodes get no default "
                    "route, so cluster traffic still cannot leave through this machine")


# --- objects the cluster needs from the start ------------------------------------------

async def bootstrap_objects(cfg: ClusterConfig, *, kubeconfig: Path | None = None,
                            apiserver_ip: str | None = None, dns_ip: str | None = None) -> None:
    """The `kubernetes` and `kube-dns` Services' endpoints, which no controller owns
    (both Services have no selector): an EndpointSlice and, as kube-apiserver's endpoint
    reconciler writes both, a core/v1 Endpoints labelled not to be mirrored (the slice is
    written here already). Idempotent."""
    from kubecore.api import resources as R
    from kubecore.api.errors import ApiError
    from kubecore.client.rest import from_kubeconfig

    api_ip, dns_addr = apiserver_ip or cfg.gateway_ip, dns_ip or cfg.gateway_ip
    async with from_kubeconfig(kubeconfig or cfg.kubeconfig) as api:
        async def ensure(rt, obj, namespace):
            try:
                await api.create(rt, obj, namespace)
            except ApiError as exc:
                if exc.code != 409:
                    raise
        await ensure(R.ENDPOINTSLICES, {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "minicluster-launcher"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [api_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": cfg.apiserver_port, "protocol": "TCP"}]}, "default")
        await ensure(R.ENDPOINTS, _unmirrored_endpoints(
            "kubernetes", api_ip, [{"name": "https", "port": cfg.apiserver_port, "protocol": "TCP"}]),
            "default")
        await ensure(R.SERVICES, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns",
                                                        "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": cfg.dns_service_ip,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": cfg.dns_port},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": cfg.dns_port}]}},
            "kube-system")
        await ensure(R.ENDPOINTSLICES, {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kube-dns",
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": "minicluster-launcher"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [dns_addr], "conditions": {"ready": True}}],
            "ports": [{"name": "dns", "port": cfg.dns_port, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": cfg.dns_port, "protocol": "TCP"}]}, "kube-system")
        await ensure(R.ENDPOINTS, _unmirrored_endpoints(
            "kube-dns", dns_addr, [{"name": "dns", "port": cfg.dns_port, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": cfg.dns_port, "protocol": "TCP"}]),
            "kube-system")


def _unmirrored_endpoints(name: str, ip: str, ports: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": ports}]}


async def list_nodes(cfg: ClusterConfig) -> list[dict]:
    from kubecore.api import resources as R
    from kubecore.client.rest import from_kubeconfig

    async with from_kubeconfig(cfg.kubeconfig, timeout=5) as api:
        nodes, _ = await api.list(R.NODES)
    return nodes


async def route_pod_ranges(cfg: ClusterConfig, nodes: list[dict], done: set[tuple[str, str]]) -> None:
    """A route in the root namespace to each node's pod range via the node, for the pairs
    that fit the cluster's ranges (`kubecore.api.nodenet.pod_routes`); a refused pair is
    logged once and never routed."""
    from kubecore.api.nodenet import pod_routes

    routes, refused = pod_routes(nodes, network.node_ranges(cfg))
    for r in refused:
        if (r.cidr, r.via) not in done:
            done.add((r.cidr, r.via))
            log.warning("not routing %s via %s (node %s): %s", r.cidr, r.via, r.node, r.why)
    for cidr, via in sorted(routes - done):
        why = await asyncio.to_thread(network.route_pod_range, cfg, cidr, via)
        if why is not None:
            log.warning("not routing %s via %s: %s", cidr, via, why)
        done.add((cidr, via))


def ready_nodes(nodes: list[dict]) -> list[str]:
    return [n["metadata"]["name"] for n in nodes
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (n.get("status") or {}).get("conditions") or [])]


# --- up ------------------------------------------------------------------------------------

async def run_up(cfg: ClusterConfig, *, ready_timeout: float = 180.0, on_ready=None) -> int:
    preflight(cfg)
    down(cfg, quiet=True)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    write_encryption_config(cfg.encryption_config)  # etcd starts empty: a fresh key
    for i in range(1, cfg.nodes + 1):
        (cfg.node_dir(i) / "cni").mkdir(parents=True, exist_ok=True)
    credentials.make(cfg, extra_sans=tuple(cfg.apiserver_sans))
    network.create(cfg)
    sup = Supervisor(cfg, all_components(cfg))
    sup.extra_state = {"nodes": [{"name": cfg.node_name(i), "address": cfg.node_ip(i),
                                  "netns": cfg.node_netns(i)} for i in range(1, cfg.nodes + 1)]}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    routed: set[tuple[str, str]] = set()
    try:
        async def after_stage(stage: int) -> None:
            if stage == 1:
                await bootstrap_objects(cfg)

        start = asyncio.create_task(sup.start_all(on_stage=after_stage))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            start.cancel()
            return 130
        start.result()
        deadline = time.monotonic() + ready_timeout
        while True:
            nodes = await list_nodes(cfg)
            await route_pod_ranges(cfg, nodes, routed)
            if len(ready_nodes(nodes)) >= cfg.nodes:
                break
            if stop.is_set():
                return 130
            if time.monotonic() > deadline:
                raise LaunchError(f"nodes not Ready after {ready_timeout:.0f}s; see {cfg.log_dir}")
            await asyncio.sleep(0.5)
        sup.save("ready")
        print_ready(cfg)
        if on_ready is not None:
            on_ready()
        async def keep_routing() -> None:
            await route_pod_ranges(cfg, await list_nodes(cfg), routed)

        watcher = asyncio.create_task(sup.watch(keep_routing))
        await stop.wait()
        watcher.cancel()
        return 0
    finally:
        sup.stop_all()
        down(cfg, quiet=True)


def print_ready(cfg: ClusterConfig) -> None:
    print(f"cluster {cfg.name!r} is up: {cfg.nodes} nodes, API server {cfg.apiserver_url}\n"
          f"  export KUBECONFIG={cfg.kubeconfig}\n"
          f"  minikubectl get nodes            (or: kubectl get nodes)\n"
          f"  dig @{cfg.gateway_ip} -p {cfg.dns_port} kubernetes.default.svc.cluster.local\n"
          f"  logs: {cfg.log_dir}", flush=True)


def up_detached(cfg: ClusterConfig, argv: list[str], timeout: float = 240.0) -> int:
    """Start the supervisor in the background and return once the cluster is ready."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = cfg.state_dir / "launcher.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([cfg.python, "-m", "cluster", *argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=str(Path(__file__).resolve().parent.parent))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = load_state(cfg.state_dir)
        if state and state.get("status") == "ready" and state.get("supervisor_pid") == proc.pid:
            print_ready(cfg)
            return 0
        if proc.poll() is not None:
            raise LaunchError(f"the launcher exited with {proc.returncode}; see {log_path}")
        time.sleep(0.3)
    raise LaunchError(f"the cluster was not ready after {timeout:.0f}s; see {log_path}")


# --- down ----------------------------------------------------------------------------------

def down(cfg: ClusterConfig, *, quiet: bool = False) -> list[str]:
    """Remove everything the cluster made; safe to run any number of times, also after the
    launcher was killed with SIGKILL."""
    done: list[str] = []
    state = load_state(cfg.state_dir)
    if state:
        sup = state.get("supervisor_pid")
        if sup and sup != os.getpid() and _alive(sup) and marked_launcher(sup):
            os.kill(sup, signal.SIGTERM)
            for _ in range(200):
                if not _alive(sup):
                    break
                time.sleep(0.1)
            done.append(f"launcher {sup}")
        pids = [c["pid"] for c in state.get("components", {}).values() if c.get("pid")]
        for pid in end_processes(pids, cfg.name):
            done.append(f"process {pid}")
    done += network.destroy(cfg, kill=lambda pids: end_processes(pids, None, timeout=3))
    for path in (cfg.state_dir / "etcd", cfg.state_dir / "nodes", cfg.state_file, cfg.kubeconfig,
                 cfg.state_dir / "kubeconfigs", cfg.pki_dir, cfg.encryption_config.parent):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if not quiet:
        print("\n".join(f"removed {d}" for d in done) if done else "nothing to remove")
    return done


def marked_launcher(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part in (b"cluster", b"cluster.up") for part in cmd)


# --- status ------------------------------------------------------------------------------------

def status(cfg: ClusterConfig) -> dict:
    state = load_state(cfg.state_dir)
    if not state:
        return {"status": "down", "apiserver": None, "dns": None, "kubeconfig": None, "nodes": [],
                "components": {}}
    comps = {}
    for name, c in state.get("components", {}).items():
        alive = bool(c.get("pid")) and _alive(c["pid"]) and marked(c["pid"], cfg.name)
        healthy = alive and (c.get("health") is None or http_ok(c["health"], cafile=str(cfg.ca_file)))
        comps[name] = {"pid": c.get("pid"), "running": alive, "healthy": healthy,
                       "restarts": c.get("restarts", 0)}
    return {"status": state.get("status"), "apiserver": cfg.apiserver_url, "dns": cfg.dns_address,
            "kubeconfig": str(cfg.kubeconfig), "nodes": state.get("nodes", []), "components": comps}
