"""The node agent: registers its Node, keeps it alive, routes to other nodes, runs its pods.

Layers above the runtime (see the package docstring):

- node: register the Node, heartbeat its Ready condition every `heartbeat_interval`, wait for
  the API server to assign `spec.podCIDR`, then write the CNI conflist for it; the Node is
  Ready only once that config is written (the kubelet's NetworkPluginNotReady until then);
- routes: a node informer; every change re-plans the routes to other nodes' pod ranges
  (`routes.desired_routes`) and syncs them into the node's routing table;
- volumes and environment: each pod's volumes (emptyDir, hostPath, and the written ones:
  configMap, secret, downwardAPI, projected with its ServiceAccount token) set up under the
  state directory before its containers start and kept fresh (`volumes`), and each container's
  environment (`podenv`: env, envFrom, the Service variables from an informer on Services,
  the ConfigMaps and Secrets read through `sources`);
- pods: an informer on pods bound here (fieldSelector spec.nodeName=<node>), a work queue of pod
  keys and workers that each take a key, plan (`podsync.plan_pod`) and let the executor
  (`executor.PodExecutor`) act through the runtime and write the status back when it changed;
  a relist loop (kubelet's PLEG) notices containers that exited and re-queues their pods;
  probes re-queue on a verdict change; what happens to containers is told as kubelet's Events
  (`podevents`: Pulled, Created, Started, Killing, BackOff, Failed, Unhealthy) through an event
  recorder that never holds up a sync;
- the HTTP server (`server.py`): health, metrics, container logs and exec for the API server.

The runtime, prober and executor exist only once the node's pod network is configured (the CNI
conflist needs the podCIDR): `start` makes them together (`PodSide`), through `make_runtime`,
which tests may replace.

After a crash the runtime's records are the truth about what runs: on start every sandbox whose
pod is no longer bound here is removed, and every remaining pod key is synced once, which
finishes half-done creates (a sandbox never READY is removed, a container never started is
replaced) and half-done deletes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Gauge, Histogram

from kubecore.api.errors import ApiError
from kubecore.api.nodenet import NodeRanges, pod_cidr_problem
from kubecore.api.resources import NODES, PODS, SERVICES
from kubecore.api.types import Obj
from kubecore.client.config import ClientConfig
from kubecore.client.events import WARNING, EventRecorder
from kubecore.client.rest import ApiClient, ApiUnavailable
from kubecore.informer.informer import Informer
from kubecore.informer.store import object_key
from kubecore.informer.workqueue import ExponentialBackoff, WorkQueue, run_workers
from services.nodeagent import masq, podevents, podsync
from services.nodeagent.cni import CniExecutor, NetworkConfigList, default_conflist
from services.nodeagent.cri import ContainerRuntime
from services.nodeagent.envvars import service_env
from services.nodeagent.executor import PodExecutor, StartFailures, observe
from services.nodeagent.imagegc import GcPolicy, ImageGC
from services.nodeagent.lifecycle import HookRunner
from services.nodeagent.oci.image import Image
from services.nodeagent.oci.registry import Puller
from services.nodeagent.oci.store import ContentStore
from services.nodeagent.ociruntime import OciRuntime
from services.nodeagent.podsync import Backoff
from services.nodeagent.policygate import PolicyGate
from services.nodeagent.probes import Prober, ProbeTarget
from services.nodeagent.projected import TokenManager
from services.nodeagent.routes import RouteTable, desired_routes
from services.nodeagent.runtime import SANDBOX_READY, ContainerInfo, Runtime, SandboxInfo
from services.nodeagent.sources import ReferencedObjects
from services.nodeagent.volumes import PodVolumes

log = logging.getLogger("nodeagent")
CONFLIST_NAME = "10-minicluster.conflist"
KUBELET_VERSION = "v1.30.0-minicluster"
MAX_PODS = 110

POD_SYNC_SECONDS = Histogram("nodeagent_pod_sync_seconds", "Time of one pod sync.",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RUNNING_PODS = Gauge("nodeagent_running_pods", "Pods with a ready sandbox on this node.")


@dataclass
class AgentConfig:
    apiserver: ClientConfig | str  # where the API server is, and this node's credentials
    node_name: str
    node_ip: str
    state_dir: Path
    cni_conf_dir: Path
    cni_bin_dirs: tuple[str, ...] = ("/usr/lib/cni",)
    cluster_dns: str = "10.96.0.10"
    # the cluster's ranges, which every route to another node's pods must fit
    # (`kubecore.api.nodenet`); empty node_network: gateways are not checked against it
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask: int = 24
    node_network: str = ""
    port: int = 10250
    bind_address: str = ""  # the secure port's address; empty: the node's own address
    tls_cert_file: str = ""  # the node's serving certificate
    tls_private_key_file: str = ""
    client_ca_file: str = ""  # callers present a certificate this CA signed
    authorization_mode: str = "Webhook"  # SubjectAccessReviews to the API server; or AlwaysAllow
    healthz_port: int = 10248  # plain /healthz /readyz /metrics on loopback; 0: none
    healthz_bind_address: str = "127.0.0.1"
    host_netns: str | None = None
    ip_masq: bool = False  # masquerade pod traffic leaving the cluster CIDR (services/nodeagent/masq.py)
    heartbeat_interval: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    relist_interval: float = 1.0
    workers: int = 16
    container_runtime: str = "process"  # or an OCI runtime binary: "runc", "crun"
    image_store_dir: Path | None = None  # the OCI runtime's images; <state_dir>/images when None
    registry_mirrors: tuple[tuple[str, str], ...] = ()  # (registry, endpoint), tried before the registry
    image_gc: GcPolicy = field(default_factory=GcPolicy)
    network_policy_agent: str = ""  # URL of the node's policy agent, asked before a new pod's containers start


_ECHO_IGNORED_METADATA = frozenset({"resourceVersion", "managedFields", "generation"})


def own_status_echo(old: Mapping[str, Any], new: Mapping[str, Any], written: Mapping[str, Any] | None) -> bool:
    """`new` differs from `old` only in the status, and that status is the one this agent last
    wrote for the pod."""
    if written is None or old.get("spec") != new.get("spec") or new.get("status") != written:
        return False
    old_meta = {k: v for k, v in (old.get("metadata") or {}).items() if k not in _ECHO_IGNORED_METADATA}
    new_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in _ECHO_IGNORED_METADATA}
    return old_meta == new_meta


class PodNotHere(Exception):
    """A logs/exec request for a pod or container this agent does not run; `code` is the HTTP status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _now_iso() -> str:
    return podsync.rfc3339(time.time()) or ""


def _meminfo_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def node_resources() -> dict[str, str]:
    """The node's capacity, all of it allocatable (what a container without limits may use)."""
    return {"pods": str(MAX_PODS), "cpu": str(os.cpu_count() or 1), "memory": f"{_meminfo_kib()}Ki",
            "ephemeral-storage": "10Gi"}


NODE_STATUS_MAX_IMAGES = 50  # kubelet's --node-status-max-images


def node_images(images: Sequence[Image], limit: int = NODE_STATUS_MAX_IMAGES) -> list[Obj]:
    """status.images as kubelet writes it: the largest first, each named by its repo digests and
    tags, at most `limit`."""
    biggest = sorted(images, key=lambda i: i.size, reverse=True)[:limit]
    return [{"names": [*i.repo_digests, *i.repo_tags], "sizeBytes": i.size} for i in biggest]


def node_status(cfg: AgentConfig, *, pod_cidr: str | None, previous: Mapping[str, Any] | None = None,
                images: Sequence[Image] = ()) -> Obj:
    """The Node status this agent reports (conditions carry a fresh heartbeat)."""
    now = _now_iso()
    # the conditions as stored: anyone may write them, and what is not an object is skipped
    old = {c.get("type"): c for c in ((previous or {}).get("conditions") or []) if isinstance(c, dict)}

    def cond(ctype: str, status: str, reason: str, message: str) -> Obj:
        before = old.get(ctype) or {}
        since = before.get("lastTransitionTime") if before.get("status") == status else None
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": since or now}

    resources = node_resources()
    if pod_cidr:
        conditions = [
            cond("NetworkUnavailable", "False", "RouteCreated", "node agent configured the pod network"),
            cond("Ready", "True", "KubeletReady", "node agent is posting ready status"),
        ]
    else:
        msg = "waiting for the API server to assign spec.podCIDR; the pod network is not configured"
        conditions = [
            cond("NetworkUnavailable", "True", "NoPodCIDR", msg),
            cond("Ready", "False", "NetworkPluginNotReady", f"network not ready: {msg}"),
        ]
    conditions += [cond(t, "False", f"KubeletHas{r}", f"node agent has {m}") for t, r, m in (
        ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
        ("DiskPressure", "NoDiskPressure", "no disk pressure"),
        ("PIDPressure", "SufficientPID", "sufficient PID available"))]
    status: Obj = {
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip}, {"type": "Hostname", "address": cfg.node_name}],
        "capacity": resources,
        "allocatable": dict(resources),
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": {
            "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
            "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
            "osImage": _os_image(), "containerRuntimeVersion": "minicluster://0.1",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux", "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()),
        },
    }
    if images:
        status["images"] = node_images(images)
    return status


class ApiPodWriter:
    """The executor's `PodWriter` over the REST client."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def delete_pod(self, name: str, namespace: str | None, *, uid: str) -> None:
        await self.client.delete(PODS, name, namespace, grace_period_seconds=0, preconditions={"uid": uid})

    async def patch_status(self, name: str, namespace: str | None, patch: Obj) -> None:
        await self.client.patch(PODS, name, {"status": patch}, namespace, subresource="status")


RuntimeFactory = Callable[[AgentConfig, NetworkConfigList], ContainerRuntime]


def real_runtime(cfg: AgentConfig, conflist: NetworkConfigList) -> ContainerRuntime:
    """The node's runtime: sandboxes networked by the CNI plugins, containers run by an OCI
    runtime from the node's image store (or, with "process", host processes)."""
    cni = CniExecutor(conflist, bin_dirs=cfg.cni_bin_dirs, host_netns=cfg.host_netns, timeout=20)
    if cfg.container_runtime == "process":
        return Runtime(node_name=cfg.node_name, state_dir=cfg.state_dir / "runtime", cni=cni,
                       cluster_dns=cfg.cluster_dns)
    store = ContentStore(cfg.image_store_dir or cfg.state_dir / "images")
    mirrors: dict[str, list[str]] = {}
    for registry_name, endpoint in cfg.registry_mirrors:
        mirrors.setdefault(registry_name, []).append(endpoint)
    return OciRuntime(images=store, runtime_binary=cfg.container_runtime, puller=Puller(store, mirrors=mirrors),
                      node_name=cfg.node_name, state_dir=cfg.state_dir / "runtime", cni=cni,
                      cluster_dns=cfg.cluster_dns)


@dataclass(frozen=True)
class PodSide:
    """What runs pods; it exists once the node's pod network is configured (`Agent.start`)."""

    runtime: ContainerRuntime
    prober: Prober
    executor: PodExecutor
    hooks: HookRunner | None = None


class NotStarted(RuntimeError):
    """The agent's pod side is asked for before `Agent.start` made it."""


class Agent:
    def __init__(self, cfg: AgentConfig, *, make_runtime: RuntimeFactory = real_runtime) -> None:
        self.cfg = cfg
        self._make_runtime = make_runtime
        self.client = ApiClient(cfg.apiserver, timeout=30)
        self.nodes = Informer(self.client, NODES, name="nodes")
        self.pods = Informer(self.client, PODS, field_selector=f"spec.nodeName={cfg.node_name}", name="pods")
        self.services = Informer(self.client, SERVICES, name="services")  # containers' service variables
        self.objects = ReferencedObjects(self.client)  # the ConfigMaps and Secrets pods read
        self.volumes = PodVolumes(self.objects, cfg.state_dir / "pods", tokens=TokenManager(self.client),
                                  allocatable=node_resources())
        self.queue = WorkQueue("pods", ExponentialBackoff(base=0.1, cap=30.0))
        self.events = EventRecorder(self.client, "kubelet", host=cfg.node_name)
        self.policy_gate = PolicyGate(cfg.network_policy_agent) if cfg.network_policy_agent else None
        self.ranges = NodeRanges.parse(cfg.cluster_cidr, cfg.node_cidr_mask, cfg.node_network)
        self.routes = RouteTable(self.ranges, cfg.host_netns)
        self._pod_side: PodSide | None = None  # made by start(), once the pod network is known
        self.pod_cidr: str | None = None
        self._refused_cidr: Any = None
        # The pod network's CNI config once written: until then the Node is not Ready (the
        # kubelet's NetworkPluginNotReady), so nothing takes a Ready node without a network.
        self.conflist: NetworkConfigList | None = None
        self.ready = asyncio.Event()
        self.start_failures = StartFailures()
        self._written_status: dict[str, Obj] = {}  # pod key -> the status this agent last wrote
        self._routes_dirty = asyncio.Event()
        self._cidr_known = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    # ----------------------------------------------------------------- node

    def _my_node(self) -> Obj | None:
        return self.nodes.store.get(self.cfg.node_name)

    async def register(self) -> None:
        """Create the Node (or find it), then post its status. Retries until the API answers."""
        labels = {"kubernetes.io/hostname": self.cfg.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": node_status(self.cfg, pod_cidr=None)["nodeInfo"]["architecture"]}
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.cfg.node_name, "labels": labels},
                "spec": {}}
        delay = 0.2
        while True:
            try:
                try:
                    node = await self.client.create(NODES, body)
                    log.info("registered node %s", self.cfg.node_name)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    node = await self.client.get(NODES, self.cfg.node_name)
                self.pod_cidr = self._usable_cidr(node)
                if self.pod_cidr and self.conflist is None:
                    self.conflist = self.write_conflist(self.pod_cidr)
                await self.post_status(node.get("status"))
                return
            except (ApiError, ApiUnavailable) as exc:
                log.warning("registering node %s: %s; retrying in %.1fs", self.cfg.node_name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def post_status(self, previous: Mapping[str, Any] | None = None) -> None:
        if previous is None:
            node = self._my_node()
            previous = (node or {}).get("status")
        configured = self.pod_cidr if self.conflist is not None else None
        images = self._pod_side.runtime.list_images() if self._pod_side is not None else []
        status = node_status(self.cfg, pod_cidr=configured, previous=previous, images=images)
        await self.client.patch(NODES, self.cfg.node_name, {"status": status}, subresource="status")

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        """Sync on any change but the echo of this agent's own status write (kubelet syncs on
        spec and metadata changes, not on status it wrote): an echo would only redo the plan, and
        run a waiting container's next attempt (an image pull back-off's) before its time."""
        key = object_key(new)
        if not own_status_echo(old, new, self._written_status.get(key)):
            self.queue.add(key)

    def _on_pod_delete(self, obj: Obj) -> None:
        self._written_status.pop(object_key(obj), None)
        self.queue.add(object_key(obj))

    def _status_written(self, key: str, status: Obj) -> None:
        self._written_status[key] = status

    def _warn_node(self, reason: str, message: str) -> None:
        """A Warning Event about this Node, referred to as kubelet does (its uid is its name)."""
        node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": self.cfg.node_name, "uid": self.cfg.node_name}}
        self.events.event(node, WARNING, reason, message)

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat_interval)
            try:
                if self._my_node() is None and self.nodes.has_synced():
                    await self.register()  # deleted behind our back: register again
                else:
                    await self.post_status()
            except (ApiError, ApiUnavailable) as exc:
                log.warning("node heartbeat failed: %s", exc)
            except Exception:
                log.exception("node heartbeat failed")

    def _on_node(self, obj: Obj) -> None:
        self._routes_dirty.set()
        if (obj.get("metadata") or {}).get("name") == self.cfg.node_name:
            cidr = self._usable_cidr(obj)
            if cidr and not self.pod_cidr:
                self.pod_cidr = cidr
            if self.pod_cidr:
                self._cidr_known.set()

    def _usable_cidr(self, node: Mapping[str, Any]) -> str | None:
        """This node's spec.podCIDR if it is a node subnet of the cluster CIDR; a range that is
        not (stored before the API server checked) is never handed to the CNI plugins: the
        node stays NotReady and says why once."""
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr:
            return None
        why = pod_cidr_problem(cidr, self.ranges)
        if why is None:
            return str(cidr)
        if cidr != self._refused_cidr:
            self._refused_cidr = cidr
            log.error("node %s: spec.podCIDR %r is not usable: %s", self.cfg.node_name, cidr, why)
        return None

    async def configure_network(self) -> NetworkConfigList:
        """The CNI config for this node's pod range, written once the API server has assigned
        the range; the Node turns Ready with it."""
        if self.conflist is not None:
            return self.conflist
        if not self.pod_cidr:
            log.warning("node %s has no spec.podCIDR yet; waiting", self.cfg.node_name)
            await self._cidr_known.wait()
        assert self.pod_cidr
        self.conflist = self.write_conflist(self.pod_cidr)
        await self.post_status()
        return self.conflist

    def write_conflist(self, pod_cidr: str) -> NetworkConfigList:
        """The node's conflist in the conf dir; host-local leases under the state dir (per node)."""
        data = default_conflist(pod_cidr=pod_cidr, ipam_data_dir=self.cfg.state_dir / "ipam")
        self.cfg.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        path = self.cfg.cni_conf_dir / CONFLIST_NAME
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
        return NetworkConfigList.from_file(path)

    async def routes_loop(self) -> None:
        while True:
            await self._routes_dirty.wait()
            self._routes_dirty.clear()
            try:
                routes, refused = desired_routes(self.cfg.node_name, self.nodes.store.list(), self.ranges)
                self.routes.tell_refused(refused)
                await self.routes.sync(routes)
            except Exception as exc:  # netlink refusals: retry on the next change or in a while
                log.warning("route sync failed: %s", exc)
                await asyncio.sleep(2.0)
                self._routes_dirty.set()
            await asyncio.sleep(0.1)  # merge bursts of node events into one sync

    # ----------------------------------------------------------------- pods

    @property
    def pod_side(self) -> PodSide:
        if self._pod_side is None:
            raise NotStarted(f"node agent {self.cfg.node_name} has not started its pods yet")
        return self._pod_side

    @property
    def runtime(self) -> ContainerRuntime:
        return self.pod_side.runtime

    def _sandboxes_by_key(self) -> dict[str, list[SandboxInfo]]:
        out: dict[str, list[SandboxInfo]] = {}
        for s in self.runtime.list_pod_sandboxes():
            out.setdefault(s.key, []).append(s)
        return out

    async def sync_pod(self, key: str) -> None:
        started = time.monotonic()
        try:
            await self._sync_pod(key)
        finally:
            POD_SYNC_SECONDS.observe(time.monotonic() - started)

    async def _sync_pod(self, key: str) -> None:
        """Plan from the pod and what runs for its key; the executor carries the plan out."""
        side = self.pod_side
        pod = self.pods.store.get(key)
        sandboxes, containers = observe(side.runtime, key)
        plan = podsync.plan_pod(pod, sandboxes, containers, now=time.time(), backoff=self.cfg.backoff,
                                liveness_failed=frozenset(side.prober.live_failed),
                                startup_failed=frozenset(side.prober.startup_failed),
                                start_failures=self.start_failures.of_pod(podsync.pod_uid(pod)) if pod else {},
                                key=key)
        await side.executor.run(plan)

    def _bound_pod_uids(self) -> set[str]:
        return {podsync.pod_uid(p) for p in self.pods.store.list()}

    def _tell(self, pod: Mapping[str, Any], ev: podevents.PodEvent) -> None:
        self.events.event(dict(pod), ev.type, ev.reason, ev.message, field_path=ev.field_path)

    def _probe_failed(self, target: ProbeTarget, kind: str, detail: str) -> None:
        pod = self.pods.store.get(target.pod_key)
        if pod is not None:
            self._tell(pod, podevents.unhealthy(str(target.container.get("name")), kind, detail))

    async def relist_loop(self, runtime: ContainerRuntime) -> None:
        """kubelet's PLEG: compare container states with the last look; re-queue pods that changed."""
        last: dict[str, tuple[str, str]] = {}
        while True:
            await asyncio.sleep(self.cfg.relist_interval)
            sandboxes = runtime.list_pod_sandboxes()
            keys = {s.id: s.key for s in sandboxes}
            now: dict[str, tuple[str, str]] = {}
            for c in runtime.list_containers():
                now[c.id] = (c.state, keys.get(c.sandbox_id, ""))
            for cid, (state, key) in now.items():
                if key and last.get(cid, ("", ""))[0] != state:
                    self.queue.add(key)
            last = now
            RUNNING_PODS.set(sum(1 for s in sandboxes if s.state == SANDBOX_READY))

    # ----------------------------------------------------------------- logs and exec

    def find_sandbox(self, namespace: str, name: str) -> SandboxInfo:
        """The READY sandbox of a pod bound to this node (where port forwarding connects)."""
        key = f"{namespace}/{name}"
        pod = self.pods.store.get(key)
        if pod is None or self._pod_side is None:
            raise PodNotHere(404, "NotFound", f"pod {key} is not bound to node {self.cfg.node_name}")
        sandbox = podsync.current_sandbox(pod, self._sandboxes_by_key().get(key, []))
        if sandbox is None:
            raise PodNotHere(400, "BadRequest", f"pod {name} does not have a running sandbox")
        return sandbox

    def find_container(self, namespace: str, name: str, container: str) -> ContainerInfo:
        """The latest attempt of a container of a pod bound to this node."""
        return self.find_attempts(namespace, name, container)[-1]

    def find_attempts(self, namespace: str, name: str, container: str) -> list[ContainerInfo]:
        """The attempts of a container of a pod bound to this node the runtime still has, oldest
        first (the current one and the one before it: what `logs --previous` reads)."""
        key = f"{namespace}/{name}"
        pod = self.pods.store.get(key)
        if pod is None or self._pod_side is None:
            raise PodNotHere(404, "NotFound", f"pod {key} is not bound to node {self.cfg.node_name}")
        names = [c["name"] for c in podsync.spec_containers(pod)]
        if container not in names:
            raise PodNotHere(400, "BadRequest", f"container {container} is not valid for pod {name}")
        sandbox = podsync.current_sandbox(pod, self._sandboxes_by_key().get(key, [])) or \
            podsync.latest_sandbox(pod, self._sandboxes_by_key().get(key, []))
        attempts = podsync.by_name(self.runtime.list_containers(sandbox.id)).get(container, []) if sandbox else []
        if not attempts:
            raise PodNotHere(400, "BadRequest",
                             f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        return attempts

    # ----------------------------------------------------------------- run

    async def start(self) -> None:
        """Everything up to the workers: node, network config, runtime, caches, orphan cleanup."""
        cfg = self.cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        await self.register()
        self.nodes.add_handlers(on_add=self._on_node, on_update=lambda old, new: self._on_node(new),
                                on_delete=self._on_node)
        await self.nodes.start()
        self._tasks.append(asyncio.create_task(self.heartbeat_loop(), name="heartbeat"))
        await self.nodes.synced.wait()
        mine = self._my_node()
        if mine is not None:
            self._on_node(mine)
        conflist = await self.configure_network()
        if cfg.ip_masq:
            await masq.ensure(cfg.cluster_cidr, cfg.host_netns)
        runtime = self._make_runtime(cfg, conflist)
        prober = Prober(runtime, host_netns=cfg.host_netns, on_change=self.queue.add, on_failure=self._probe_failed)
        hooks = HookRunner(runtime, host_netns=cfg.host_netns)
        executor = PodExecutor(runtime=runtime, probes=prober, writer=ApiPodWriter(self.client), events=self.events,
                               on_status_written=self._status_written,
                               requeue=self.queue.add_after, bound_pod_uids=self._bound_pod_uids,
                               node_ip=cfg.node_ip, backoff=cfg.backoff, failures=self.start_failures,
                               volumes=self.volumes, objects=self.objects, allocatable=node_resources(), hooks=hooks,
                               service_env=lambda pod: service_env(pod, self.services.store.list()),
                               policy_gate=self.policy_gate)
        self._pod_side = PodSide(runtime, prober, executor, hooks)
        await self.post_status()  # with the node's images (status.images), as soon as they are known
        self._tasks.append(asyncio.create_task(self.routes_loop(), name="routes"))
        self.pods.add_handlers(on_add=lambda o: self.queue.add(object_key(o)),
                               on_update=self._on_pod_update,
                               on_delete=self._on_pod_delete)
        # As kubelet, no container starts before the Services are known: their variables are its.
        await self.services.start()
        await self.pods.start()
        await self.services.synced.wait()
        await self.pods.synced.wait()
        self.volumes.keep_pods(self._bound_pod_uids())
        removed = await runtime.cleanup_orphans(self._bound_pod_uids())
        if removed:
            log.info("removed %d orphaned sandboxes", len(removed))
        for key in self._sandboxes_by_key():
            self.queue.add(key)
        self._tasks.append(asyncio.create_task(self.relist_loop(runtime), name="relist"))
        if cfg.container_runtime != "process":  # host processes store no images
            gc = ImageGC(runtime, used_images=lambda: [c.image for c in runtime.list_containers()],
                         warn=self._warn_node, policy=cfg.image_gc)
            self._tasks.append(asyncio.create_task(gc.run(), name="image-gc"))
        self.ready.set()
        log.info("node %s ready: podCIDR %s, %d pods bound", cfg.node_name, self.pod_cidr, len(self.pods.store))

    async def run_workers(self) -> None:
        await run_workers(self.queue, self.sync_pod, self.cfg.workers, logger=log)

    async def stop(self) -> None:
        """Stop watching and working. Pods keep running: a restarted agent adopts them."""
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.nodes.stop()
        await self.pods.stop()
        await self.services.stop()
        if self._pod_side is not None:
            await self._pod_side.prober.close()
            if self._pod_side.hooks is not None:
                await self._pod_side.hooks.close()
            self._pod_side.runtime.close()
        await self.events.close()
        if self.policy_gate is not None:
            await self.policy_gate.close()
        await self.client.close()
