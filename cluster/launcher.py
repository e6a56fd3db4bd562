"""`cluster up`, `cluster down`, `cluster status`: the whole cluster on one machine,
nodes as network namespaces (no container engine needed)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cluster import credentials, hoststate, network, nodeimages, registry, userconfig
from cluster.components import Component, all_components
from cluster.config import ClusterConfig, load_state
from cluster.encryption import write_config as write_encryption_config
from cluster.progress import Lines, Progress, Relay
from cluster.supervisor import StartError, Supervisor, _alive, end_processes, http_ok, marked
from services.nodeagent.oci.image import ImageError

log = logging.getLogger("cluster")


class LaunchError(RuntimeError):
    pass


# --- preflight --------------------------------------------------------------------------

def preflight(cfg: ClusterConfig) -> None:
    if os.geteuid() != 0:
        raise LaunchError("the local cluster needs root (network namespaces, CNI, iptables)")
    needed = ("etcd", "ip", "nsenter", "iptables-restore", "nft")  # nft: NetworkPolicy, and a proxy mode
    for binary in needed:
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
                            dns_ips: list[str] | None = None) -> None:
    """The `kube-dns` Service and its endpoints, which no controller owns (the Service has no
    selector: the DNS servers run beside the control plane, not as pods): an EndpointSlice
    and, as kube-apiserver's endpoint reconciler writes both for `kubernetes`, a core/v1
    Endpoints labelled not to be mirrored. The `kubernetes` Service's endpoints are the API
    servers' own (their lease endpoint reconciler). Idempotent."""
    from kubecore.api import resources as R
    from kubecore.api.errors import ApiError
    from kubecore.client.rest import from_kubeconfig

    dns_addrs = dns_ips or cfg.dns_ips
    async with from_kubeconfig(kubeconfig or cfg.kubeconfig) as api:
        async def ensure(rt, obj, namespace):
            try:
                await api.create(rt, obj, namespace)
            except ApiError as exc:
                if exc.code != 409:
                    raise
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
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in dns_addrs],
            "ports": [{"name": "dns", "port": cfg.dns_port, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": cfg.dns_port, "protocol": "TCP"}]}, "kube-system")
        await ensure(R.ENDPOINTS, _unmirrored_endpoints(
            "kube-dns", dns_addrs, [{"name": "dns", "port": cfg.dns_port, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": cfg.dns_port, "protocol": "TCP"}]),
            "kube-system")


async def publish_dns_readiness(cfg: ClusterConfig, ready: dict[str, bool]) -> None:
    """kube-dns's endpoints follow the DNS servers' readiness (their /readyz, as a kubelet
    probes CoreDNS's and the endpoint controllers publish it): a server that is down or not
    ready stays listed, not ready, so no proxy sends queries to it. Written only on a change."""
    from kubecore.api import resources as R
    from kubecore.client.rest import from_kubeconfig

    endpoints = [{"addresses": [ip], "conditions": {"ready": ok}} for ip, ok in ready.items()]
    subset: dict = {"ports": [{"name": "dns", "port": cfg.dns_port, "protocol": "UDP"},
                              {"name": "dns-tcp", "port": cfg.dns_port, "protocol": "TCP"}]}
    if any(ready.values()):
        subset["addresses"] = [{"ip": ip} for ip, ok in ready.items() if ok]
    if not all(ready.values()):
        subset["notReadyAddresses"] = [{"ip": ip} for ip, ok in ready.items() if not ok]
    async with from_kubeconfig(cfg.kubeconfig, timeout=5) as api:
        current = await api.get(R.ENDPOINTSLICES, "kube-dns", "kube-system")
        if current.get("endpoints") != endpoints:
            current["endpoints"] = endpoints
            await api.replace(R.ENDPOINTSLICES, current)
            log.info("kube-dns endpoints: %s", ", ".join(f"{ip} {'ready' if ok else 'not ready'}"
                                                         for ip, ok in ready.items()))
        old = await api.get(R.ENDPOINTS, "kube-dns", "kube-system")
        if old.get("subsets") != [subset]:
            old["subsets"] = [subset]
            await api.replace(R.ENDPOINTS, old)


def _unmirrored_endpoints(name: str, ips: list[str], ports: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": ports}]}


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

def _copies(members: list[str], name: str) -> list[str]:
    """The members that are `name` or a copy of it (`name-2`, ...)."""
    return [m for m in members if m == name or m.startswith(f"{name}-")]


def _counted(what: str, n: int) -> str:
    return what if n == 1 else f"{what} ({n})"


def _stage_title(cfg: ClusterConfig, members: list[str]) -> str:
    etcd, apiservers, dns = _copies(members, "etcd"), _copies(members, "apiserver"), _copies(members, "dns")
    if etcd and sorted(members) in (sorted(etcd), sorted([*etcd, "registry"])):
        what = "etcd" if len(etcd) == 1 else f"etcd ({len(etcd)} members)"
        return f"Starting {what}" + (" and the image registry" if "registry" in members else "")
    if apiservers and members == apiservers:
        return "Starting the API server" if len(members) == 1 else f"Starting the API servers ({len(members)})"
    if all(m.startswith(("nodeagent-", "proxy-", "netpol-")) for m in members):
        return f"Starting nodes ({cfg.nodes})"
    controllers = [m for m in members if m not in dns and m != "netview"]
    extras = [what for present, what in ((dns, _counted("DNS", len(dns))),
                                         ("netview" in members, "the live picture")) if present]
    return f"Starting controllers ({len(controllers)})" + "".join(
        f", {what}" for what in extras[:-1]) + (f" and {extras[-1]}" if extras else "")


def stage_titles(cfg: ClusterConfig, components: list[Component]) -> dict[int, str]:
    """What each start-up stage of the supervisor is called in `cluster up`'s progress."""
    return {stage: _stage_title(cfg, [c.name for c in components if c.stage == stage])
            for stage in sorted({c.stage for c in components})}


class Steps:
    """The steps of `cluster up` as `Progress` shows them; a step that fails becomes one
    LaunchError naming the step and the log to read (its traceback goes to the launcher log)."""

    def __init__(self, cfg: ClusterConfig, progress: Progress) -> None:
        self.cfg, self.progress = cfg, progress
        self.title: str | None = None

    def start(self, title: str) -> None:
        self.title = title
        log.info("%s", title)
        self.progress.start(title)

    def done(self) -> None:
        if self.title is not None:
            log.info("%s: done", self.title)
        self.progress.end(True)
        self.title = None

    def abort(self) -> None:
        self.progress.end(False)
        self.title = None

    def failed(self, exc: Exception) -> LaunchError:
        title, self.title = self.title or "cluster up", None
        self.progress.end(False)
        log.error("%s failed", title, exc_info=exc, extra={"reported": True})
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, (LaunchError, StartError)):  # these name their log already
            reason += f"; see {self.cfg.launcher_log}"
        return LaunchError(f"{title[0].lower()}{title[1:]}: {reason}")

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.start(title)
        try:
            yield
        except Exception as exc:
            raise self.failed(exc) from exc
        self.done()


async def run_up(cfg: ClusterConfig, *, progress: Progress | None = None, kubeconfig: str | None = None,
                 ready_timeout: float = 180.0, on_ready=None) -> int:
    """Start the cluster, set the user's kubectl context once it is ready, and run until
    SIGINT/SIGTERM; then tear everything down (the context too)."""
    began = time.monotonic()
    steps = Steps(cfg, progress or Lines())
    preflight(cfg)
    down(cfg, quiet=True, kubeconfig=kubeconfig)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with steps.step("Creating PKI"):
        write_encryption_config(cfg.encryption_config)  # etcd starts empty: a fresh key
        credentials.make(cfg, extra_sans=tuple(cfg.apiserver_sans))
    with steps.step(f"Creating the node network ({cfg.nodes} network namespaces)"):
        for i in range(1, cfg.nodes + 1):
            (cfg.node_dir(i) / "cni").mkdir(parents=True, exist_ok=True)
        network.create(cfg)
    if cfg.container_runtime != "process":
        with steps.step(f"Loading the node images ({', '.join(nodeimages.recipes())}) and the registry"):
            load_node_images(cfg)
    sup = Supervisor(cfg, all_components(cfg))
    sup.extra_state = {"nodes": [{"name": cfg.node_name(i), "address": cfg.node_ip(i),
                                  "netns": cfg.node_netns(i)} for i in range(1, cfg.nodes + 1)]}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    routed: set[tuple[str, str]] = set()
    try:
        if not await _start_components(cfg, sup, steps, stop):
            return 130
        with steps.step(f"Waiting for nodes to be Ready ({cfg.nodes})"):
            if not await _wait_ready(cfg, routed, stop, ready_timeout):
                steps.abort()
                return 130
        written, warning = set_user_context(cfg, kubeconfig)
        if written is not None:
            sup.extra_state["user_kubeconfig"] = str(written)
        sup.save("ready")
        steps.progress.ready(ready_message(cfg, seconds=time.monotonic() - began, written=written,
                                           explicit=kubeconfig, warning=warning))
        if on_ready is not None:
            on_ready()
        dns_names = _copies([c.name for c in sup.components], "dns")
        dns = [c for c in sup.components if c.name in dns_names]

        async def every_second() -> None:
            await route_pod_ranges(cfg, await list_nodes(cfg), routed)
            ready = await asyncio.gather(*(asyncio.to_thread(http_ok, c.health or "", 1.0) for c in dns))
            await publish_dns_readiness(cfg, dict(zip(cfg.dns_ips, ready, strict=True)))

        watcher = asyncio.create_task(sup.watch(every_second))
        await stop.wait()
        watcher.cancel()
        return 0
    finally:
        sup.stop_all()
        down(cfg, quiet=True, kubeconfig=kubeconfig)


def load_node_images(cfg: ClusterConfig, cache: Path = nodeimages.DEFAULT_CACHE,
                     seed_cache: Path = registry.DEFAULT_SEED_CACHE) -> None:
    """The default images (built from this machine's packages, or from the cache) into every
    node's store, as `minikubectl image load` would, and into the storage of the cluster's
    registry (its `registry` component serves it): the node agents find them in both."""
    try:
        built = nodeimages.load([cfg.node_dir(i) / "images" for i in range(1, cfg.nodes + 1)], cache)
        registry.prepare(nodeimages.for_registry(built), cfg.registry_dir, f"{cfg.gateway_ip}:{cfg.registry_port}",
                         seed_cache)
    except (nodeimages.BuildError, registry.RegistryError, ImageError, OSError, subprocess.SubprocessError) as exc:
        raise LaunchError(f"the node images: {exc}") from exc


async def _start_components(cfg: ClusterConfig, sup: Supervisor, steps: Steps, stop: asyncio.Event) -> bool:
    """The supervisor's stages, one progress step each; False if stopped by a signal."""
    titles = stage_titles(cfg, sup.components)

    async def after_stage(stage: int) -> None:
        if stage == 1:
            await bootstrap_objects(cfg)

    start = asyncio.create_task(sup.start_all(on_stage=after_stage,
                                              on_stage_start=lambda stage: steps.start(titles[stage])))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if stop.is_set():
        start.cancel()
        steps.abort()
        return False
    try:
        start.result()
    except Exception as exc:
        raise steps.failed(exc) from exc
    steps.done()
    return True


async def _wait_ready(cfg: ClusterConfig, routed: set[tuple[str, str]], stop: asyncio.Event,
                      ready_timeout: float) -> bool:
    """Route the nodes' pod ranges until every node is Ready; False if stopped by a signal."""
    deadline = time.monotonic() + ready_timeout
    while True:
        nodes = await list_nodes(cfg)
        await route_pod_ranges(cfg, nodes, routed)
        if len(ready_nodes(nodes)) >= cfg.nodes:
            return True
        if stop.is_set():
            return False
        if time.monotonic() > deadline:
            raise LaunchError(f"nodes not Ready after {ready_timeout:.0f}s; see the node agents' logs "
                              f"in {cfg.log_dir}")
        await asyncio.sleep(0.5)


def set_user_context(cfg: ClusterConfig, kubeconfig: str | None) -> tuple[Path | None, str | None]:
    """Merge the cluster into the user's kubeconfig (kind's `Set kubectl context`): the file
    written, or why not. A kubeconfig we may not rewrite does not fail a started cluster."""
    try:
        entry = userconfig.load_cluster_config(cfg.kubeconfig, userconfig.context_name(cfg.name),
                                               cfg.user_servers)
        return userconfig.merge_into(entry, explicit=kubeconfig), None
    except userconfig.UserConfigError as exc:
        log.warning("kubectl context not set: %s", exc)
        return None, str(exc)


def ready_message(cfg: ClusterConfig, *, seconds: float, written: Path | None,
                  explicit: str | None, warning: str | None) -> str:
    """What `cluster up` prints once the cluster is ready, as `kind create cluster` ends."""
    context = userconfig.context_name(cfg.name)
    if written is not None:
        flag = f" --kubeconfig {shlex.quote(explicit)}" if explicit else ""
        head = f'Set kubectl context to "{context}"' + (f" in {written}" if explicit else "")
        use = [f"kubectl cluster-info --context {context}{flag}", f"minikubectl{flag} get nodes"]
    else:
        head = f"warning: kubectl context not set: {warning}"
        use = [f"kubectl --kubeconfig {cfg.kubeconfig} cluster-info",
               f"minikubectl --kubeconfig {cfg.kubeconfig} get nodes"]
    use.append(f"dig @{cfg.gateway_ip} -p {cfg.dns_port} kubernetes.default.svc.cluster.local")
    use.append(use[1].replace(" get nodes", " trace <pod> svc/<name>:<port>") + "   # a packet's path, step by step")
    return "\n".join([
        head,
        f"Cluster {cfg.name!r} is ready after {seconds:.1f}s: {cfg.nodes} nodes, "
        f"API server {cfg.user_servers[0]}. You can now use it with:", "",
        *(f"  {line}" for line in use), "",
        f"The cluster's network, live: {cfg.ui_url}",
        f"kubeconfig for scripts: {cfg.kubeconfig}   logs: {cfg.log_dir}",
        f"`cluster down` stops it and removes the \"{context}\" context.",
    ])


def up_detached(cfg: ClusterConfig, argv: list[str], *, progress: Progress | None = None,
                timeout: float = 240.0) -> int:
    """Start the launcher in the background, show its steps as it reports them on a pipe,
    and return once the cluster is ready."""
    shown = progress or Lines()
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    try:
        with open(cfg.launcher_log, "ab") as out:
            proc = subprocess.Popen([cfg.python, "-m", "cluster", *argv, "--progress-fd", str(write_end)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, pass_fds=(write_end,),
                                    cwd=str(Path(__file__).resolve().parent.parent))
    finally:
        os.close(write_end)
    relay = Relay(shown)
    deadline = time.monotonic() + timeout
    with os.fdopen(read_end, "rb", buffering=0) as events:
        while not relay.finished:
            if time.monotonic() > deadline:
                raise LaunchError(f"the cluster was not ready after {timeout:.0f}s; see {cfg.launcher_log}")
            if select.select([events], [], [], 0.5)[0]:
                data = events.read(65536)
                if not data:
                    break  # the launcher exited or closed its end
                relay.feed(data)
    if relay.error is not None:
        raise LaunchError(relay.error)
    state = load_state(cfg.state_dir)
    if relay.ready is None or not state or state.get("supervisor_pid") != proc.pid:
        code = proc.wait(timeout=60)
        raise LaunchError(f"the launcher exited with {code}; see {cfg.launcher_log}")
    shown.ready(relay.ready)
    return 0


# --- down ----------------------------------------------------------------------------------

def down(cfg: ClusterConfig, *, quiet: bool = False, kubeconfig: str | None = None) -> list[str]:
    """Remove everything the cluster made, its kubectl context in the user's kubeconfig too;
    safe to run any number of times, also after the launcher was killed with SIGKILL."""
    done: list[str] = []
    state = load_state(cfg.state_dir)
    done += remove_user_context(cfg, state, kubeconfig, quiet=quiet)
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
    done += [f"mount {point}" for point in hoststate.unmount_under(cfg.state_dir / "nodes")]
    done += hoststate.remove_cgroups(_node_names(cfg))
    for path in (*(cfg.etcd_data_dir(k) for k in range(3)), cfg.state_dir / "nodes", cfg.registry_dir,
                 cfg.state_file, cfg.state_dir / "operator.json", cfg.kubeconfig, cfg.state_dir / "kubeconfigs",
                 cfg.pki_dir,
                 cfg.encryption_config.parent):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:  # the launcher's own teardown may be removing the same files right now
            path.unlink(missing_ok=True)
    if not quiet:
        print("\n".join(f"removed {d}" for d in done) if done else "nothing to remove")
    return done


def _node_names(cfg: ClusterConfig) -> list[str]:
    """The configured nodes and any other node directory left behind (a cluster once bigger)."""
    names = {cfg.node_name(i) for i in range(1, cfg.nodes + 1)}
    nodes_dir = cfg.state_dir / "nodes"
    if nodes_dir.is_dir():
        names |= {p.name for p in nodes_dir.iterdir() if p.is_dir()}
    return sorted(names)


def remove_user_context(cfg: ClusterConfig, state: dict | None, kubeconfig: str | None, *,
                        quiet: bool) -> list[str]:
    """Take the cluster's entries out of the files kubectl reads (`--kubeconfig`, else
    `$KUBECONFIG`, else ~/.kube/config) and out of the file `cluster up` wrote them to. A
    kubeconfig we may not rewrite is a warning: it must not stop the teardown."""
    key = userconfig.context_name(cfg.name)
    recorded = (Path(state["user_kubeconfig"]),) if state and state.get("user_kubeconfig") else ()
    try:
        changed = userconfig.remove_from(key, explicit=kubeconfig, also=recorded)
    except userconfig.UserConfigError as exc:
        log.warning("kubectl context %s not removed: %s", key, exc)
        if not quiet:
            print(f"warning: kubectl context {key!r} not removed: {exc}", file=sys.stderr)
        return []
    return [f'kubectl context "{key}" from {path}' for path in changed]


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
        return {"status": "down", "apiserver": None, "dns": None, "ui": None, "kubeconfig": None, "context": None,
                "user_kubeconfig": None, "proxyMode": None, "nodes": [], "components": {}}
    comps = {}
    for name, c in state.get("components", {}).items():
        alive = bool(c.get("pid")) and _alive(c["pid"]) and marked(c["pid"], cfg.name)
        healthy = alive and (c.get("health") is None or http_ok(c["health"], cafile=str(cfg.ca_file)))
        comps[name] = {"pid": c.get("pid"), "running": alive, "healthy": healthy,
                       "restarts": c.get("restarts", 0)}
    return {"status": state.get("status"), "apiserver": cfg.user_servers[0], "dns": cfg.dns_address, "ui": cfg.ui_url,
            "kubeconfig": str(cfg.kubeconfig), "context": userconfig.context_name(cfg.name),
            "user_kubeconfig": state.get("user_kubeconfig"), "proxyMode": cfg.proxy_mode,
            "nodes": state.get("nodes", []), "components": comps}
