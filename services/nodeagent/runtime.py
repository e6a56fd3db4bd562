"""A CRI-shaped runtime: pod sandboxes are network namespaces, containers are processes in them.

This layer knows nothing of the API server or of reconciling; the agent's sync loop calls it
the way kubelet calls a CRI runtime (RunPodSandbox, CreateContainer, StartContainer, ...).

A sandbox is
- a named network namespace `mc-<node>-<pod uid[:8]>-<sandbox id[:6]>` (a bind mount under
  /run/netns, so it outlives any process and needs no pause container), loopback up,
- `eth0` and its address from the CNI network list (ADD with the sandbox id as container id),
- a directory holding the pod's `hostname`, `resolv.conf` and `hosts`.

A container (this base class: `--container-runtime process`, kept for fast tests and
benchmarks of the pod machinery; `ociruntime.OciRuntime` runs images) is its pod spec's
`command` + `args`, a program of the node, started as
    nsenter --net=<sandbox netns> -- unshare --uts --mount -- /bin/sh -c INIT mc-init ... argv
`nsenter` and `unshare` each switch namespaces and then exec, and the small shell init sets
the hostname, bind-mounts the pod's files over /etc/{hostname,resolv.conf,hosts} inside the
new private mount namespace, then the container's volumes at their mount paths, changes to
the working directory and execs the command. So the
PID the runtime gets back is the container's own process, all namespace work happens in the
child after fork, and nothing runs between fork and exec in the agent's (threaded, asyncio)
process -- which a `preexec_fn` calling setns/unshare/mount would do, and which Python warns is
unsafe with threads. util-linux does the namespace syscalls; no ctypes.

Every sandbox and container is a JSON file under the state directory, holding PIDs together
with their start times, so a restarted agent finds and adopts what still runs (`list_*` read
disk and check liveness), and `cleanup_orphans` removes what is no longer wanted.

Known limits: exit codes are recorded by the agent that started the process; a container that
exits while no agent is its parent (after an agent restart) reports exit code None.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from prometheus_client import Histogram

from services.nodeagent import netns, podinput, procfs
from services.nodeagent.cni import CniError, NetworkPlugin, PortMapping, RuntimeConf
from services.nodeagent.containerio import ContainerIO
from services.nodeagent.execproc import ExecProcess
from services.nodeagent.oci import mounts, reference
from services.nodeagent.oci.image import Image, ImageConfig

log = logging.getLogger(__name__)

NETNS_DIR = "/run/netns"
DEFAULT_CLUSTER_DNS = "10.96.0.10"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
POD_IFNAME = "eth0"
SCRATCH_DIR = "scratch"  # in the pod directory: where a container's mount namespace puts its tmpfs
_VENV_BIN = os.path.dirname(sys.executable)
DEFAULT_CONTAINER_PATH = f"{_VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SANDBOX_READY = "SANDBOX_READY"
SANDBOX_NOTREADY = "SANDBOX_NOTREADY"
SANDBOX_CREATING = "SANDBOX_CREATING"  # on disk before the netns exists, so a crash leaves a trace

CONTAINER_CREATED = "CONTAINER_CREATED"
CONTAINER_RUNNING = "CONTAINER_RUNNING"
CONTAINER_EXITED = "CONTAINER_EXITED"

SANDBOX_START_SECONDS = Histogram(
    "nodeagent_sandbox_start_seconds", "Time to run a pod sandbox (netns, pod files, CNI ADD).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _which(name: str) -> str:
    path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise RuntimeError(f"{name} not found; the node agent needs util-linux and iproute2")
    return path


_NSENTER = _which("nsenter")
_UNSHARE = _which("unshare")
_MOUNT = _which("mount")
_HOSTNAME = _which("hostname")
_SETSID = _which("setsid")
_SH = "/bin/sh"

# Runs inside the container's fresh UTS and mount namespaces, then becomes the container.
# The hostname is set with sethostname(2) (`hostname`), not through /proc/sys, which a node
# that is itself a container has read-only.
# Targets that do not exist on this host are left alone rather than created. Then the
# container's volume mounts ($7 of them, three arguments each: source, target, ro), each a bind
# mount, read-only if asked; a source that is a file (a subPath) is mounted on a file. A target
# missing on this host is made inside the container only:
# an overlay over its nearest existing ancestor, whose upper layer is a tmpfs mounted on the
# pod's scratch directory ($5), so the host gains no file or directory; a directory already
# under such an overlay takes further targets without another one (an overlay's upper layer
# cannot be another overlay's lower layer).
# All of it happens in the container's private mount namespace, seen by no one else.
_INIT_SCRIPT = f"""set -e
{shlex.quote(_HOSTNAME)} "$1"
[ ! -e /etc/hostname ] || {shlex.quote(_MOUNT)} --bind "$2" /etc/hostname
[ ! -e /etc/resolv.conf ] || {shlex.quote(_MOUNT)} --bind "$3" /etc/resolv.conf
[ ! -e /etc/hosts ] || {shlex.quote(_MOUNT)} --bind "$4" /etc/hosts
scratch="$5"; workdir="$6"; n="$7"
shift 7
i=0; overlaid=""; nl='
'
under_overlay() {{
  old_ifs=$IFS; IFS=$nl
  for o in $overlaid; do case "$1/" in "$o"/*) IFS=$old_ifs; return 0;; esac; done
  IFS=$old_ifs; return 1
}}
while [ "$n" -gt 0 ]; do
  src="$1"; dst="$2"; ro="$3"; shift 3; n=$((n - 1)); i=$((i + 1))
  if [ ! -e "$dst" ]; then
    top=$(realpath -m "$dst")
    while [ ! -d "$top" ]; do top=$(dirname "$top"); done
    if [ "$top" = / ]; then echo "mc-init: cannot make $dst: nothing but / above it" >&2; exit 1; fi
    if ! under_overlay "$top"; then
      [ -n "$overlaid" ] || {shlex.quote(_MOUNT)} -t tmpfs -o mode=0700 mc-scratch "$scratch"
      upper="$scratch/upper$i"; work="$scratch/work$i"
      mkdir "$upper" "$work"
      {shlex.quote(_MOUNT)} -t overlay mc-volume -o "lowerdir=$top,upperdir=$upper,workdir=$work" "$top"
      overlaid="$overlaid$nl$top"
    fi
    if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; : > "$dst"; fi
  fi
  {shlex.quote(_MOUNT)} --bind "$src" "$dst"
  [ "$ro" != ro ] || {shlex.quote(_MOUNT)} -o remount,bind,ro "$dst"
done
cd "$workdir"
exec "$@"
"""


# --------------------------------------------------------------------------- errors


class RuntimeServiceError(Exception):
    """A runtime call failed; `reason` is what the pod status should say."""

    reason = "RuntimeError"


class NotFoundError(RuntimeServiceError):
    reason = "NotFound"


class SandboxCreateError(RuntimeServiceError):
    reason = "FailedCreatePodSandBox"


class ContainerCreateError(RuntimeServiceError):
    reason = "CreateContainerError"


class ContainerStartError(RuntimeServiceError):
    reason = "RunContainerError"


class ExecTimeoutError(RuntimeServiceError):
    reason = "ExecTimeout"


class CommandNotFoundError(RuntimeServiceError):
    """The command of an exec cannot be run: `exit_code` 127 (not found) or 126 (not executable),
    as a shell and container runtimes report it."""

    reason = "CommandNotFound"

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SandboxInfo:
    id: str
    pod_uid: str
    namespace: str
    name: str
    node: str
    netns_name: str
    netns_path: str
    pod_dir: str
    hostname: str
    state: str
    created_at: float
    ip: str = ""
    port_mappings: tuple[PortMapping, ...] = ()
    cni_result: Mapping[str, Any] | None = None
    network_ready: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    share_process_namespace: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["port_mappings"] = [p.to_cni() for p in self.port_mappings]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxInfo:
        data = dict(data)
        data["port_mappings"] = tuple(PortMapping.from_cni(p) for p in data.get("port_mappings") or ())
        return cls(**data)


@dataclass(frozen=True)
class Mount:
    """A volume mount (CRI's Mount): `host_path` appears at `container_path` in the container;
    `volume` names the pod's volume it comes from, until the node resolves it to a directory."""

    container_path: str
    host_path: str = ""
    read_only: bool = False
    volume: str = ""
    sub_path: str = ""  # a path inside the volume, mounted instead of all of it
    sub_path_expr: bool = False  # sub_path holds $(VAR) references to the container's environment


@dataclass(frozen=True)
class ContainerConfig:
    """What CreateContainer needs from a pod spec's container."""

    name: str
    image: str
    command: Sequence[str] | None = None
    args: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    attempt: int = 0
    mounts: tuple[Mount, ...] = ()
    stdin: bool = False  # the spec's stdin, stdinOnce and tty (`containerio`)
    stdin_once: bool = False
    tty: bool = False
    # The pod and the container as the API has them: an OCI runtime reads securityContext and
    # resources there.
    pod: Mapping[str, Any] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    sandbox_id: str
    name: str
    image: str
    attempt: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str
    log_path: str
    state: str
    created_at: float
    pid: int = 0
    pid_start_ticks: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    mounts: tuple[Mount, ...] = ()
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    image_id: str = ""  # the image as its pod's status names it: its repo digest (or config digest), when
    # an image store gave the rootfs
    stop_signal: str = ""  # the image's StopSignal ("SIGQUIT"); SIGTERM when empty

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        data["env"] = dict(self.env)
        data["mounts"] = [asdict(m) for m in self.mounts]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContainerInfo:
        data = dict(data)
        data["argv"] = tuple(data["argv"])
        data["mounts"] = tuple(Mount(**m) for m in data.get("mounts") or ())
        return cls(**data)


class Records:
    """The runtime's sandbox and container records, as containerd keeps its metadata: one JSON
    file each under `root` (`<sandbox>/sandbox.json`, `<sandbox>/containers/<id>/container.json`),
    which an agent restart reads back, and in memory, so that a relist or a status costs no file
    reads. This agent is the only writer of `root`.

    Writes replace a file atomically without fsync: a record describes namespaces, mounts and
    processes that a machine crash takes with it, so what matters is that a record is never seen
    half-written, not that it survives the crash. A record that cannot be read back (cut short by
    such a crash) is left out with a warning, and its directory is listed in `unreadable`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sandboxes: dict[str, SandboxInfo] = {}
        self._containers: dict[str, ContainerInfo] = {}
        self.unreadable: list[Path] = []
        root.mkdir(parents=True, exist_ok=True)
        for path in sorted(root.glob("*/sandbox.json")):
            sandbox = self._read(path, SandboxInfo.from_json)
            if sandbox is not None:
                self._sandboxes[sandbox.id] = sandbox
        for path in sorted(root.glob("*/containers/*/container.json")):
            container = self._read(path, ContainerInfo.from_json)
            if container is not None:
                self._containers[container.id] = container

    def _read(self, path: Path, parse: Callable[[Mapping[str, Any]], Any]) -> Any:
        try:
            return parse(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("runtime record %s cannot be read (%s); left out", path, exc)
            self.unreadable.append(path.parent)
            return None

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / sandbox_id

    def container_dir(self, sandbox_id: str, container_id: str) -> Path:
        return self.root / sandbox_id / "containers" / container_id

    def sandbox(self, sandbox_id: str) -> SandboxInfo | None:
        return self._sandboxes.get(sandbox_id)

    def sandboxes(self) -> list[SandboxInfo]:
        return [self._sandboxes[k] for k in sorted(self._sandboxes)]

    def container(self, container_id: str) -> ContainerInfo | None:
        return self._containers.get(container_id)

    def containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]:
        """Ordered by sandbox, then container id."""
        found = (c for c in self._containers.values() if sandbox_id is None or c.sandbox_id == sandbox_id)
        return sorted(found, key=lambda c: (c.sandbox_id, c.id))

    def save_sandbox(self, info: SandboxInfo) -> None:
        _write_atomic(self.sandbox_dir(info.id) / "sandbox.json", json.dumps(info.to_json(), indent=1))
        self._sandboxes[info.id] = info

    def save_container(self, info: ContainerInfo) -> None:
        _write_atomic(self.container_dir(info.sandbox_id, info.id) / "container.json",
                      json.dumps(info.to_json(), indent=1))
        self._containers[info.id] = info

    def update_sandbox(self, info: SandboxInfo) -> None:
        """`save_sandbox` while the sandbox is still recorded (not while it is being removed)."""
        if info.id in self._sandboxes:
            self.save_sandbox(info)

    def update_container(self, info: ContainerInfo) -> None:
        if info.id in self._containers:
            self.save_container(info)

    def remove_sandbox(self, sandbox_id: str) -> None:
        """Forget the sandbox and its containers, and remove its directory."""
        self._sandboxes.pop(sandbox_id, None)
        for container in self.containers(sandbox_id):
            del self._containers[container.id]
        shutil.rmtree(self.sandbox_dir(sandbox_id), ignore_errors=True)

    def remove_container(self, info: ContainerInfo) -> None:
        self._containers.pop(info.id, None)
        shutil.rmtree(self.container_dir(info.sandbox_id, info.id), ignore_errors=True)


# --------------------------------------------------------------------------- pure helpers


_DNS_LABEL_BAD = re.compile(r"[^a-z0-9-]+")


def netns_name(node: str, pod_uid: str, sandbox_id: str) -> str:
    """`mc-<node>-<uid8>-<sid6>`: the project prefix and node make stray namespaces attributable."""
    node_part = _DNS_LABEL_BAD.sub("-", node.lower()).strip("-")[:40] or "node"
    uid_part = _DNS_LABEL_BAD.sub("", pod_uid.lower())[:8] or "nouid"
    return f"mc-{node_part}-{uid_part}-{sandbox_id[:6]}"


def netns_prefix(node: str) -> str:
    return netns_name(node, "x", "")[: -len("x-")]


def is_sandbox_netns_name(node: str, name: str) -> bool:
    """Whether `name` has exactly the shape `netns_name` gives this node's sandboxes."""
    return re.fullmatch(re.escape(netns_prefix(node)) + r"[a-z0-9]{1,8}-[0-9a-f]{6}", name) is not None


def pod_hostname(name: str, hostname: str | None = None) -> str:
    """The pod's hostname: spec.hostname if set, else the pod name, cut to 63 chars as kubelet does."""
    return (hostname or name)[:63].rstrip("-.")


def render_resolv_conf(*, namespace: str, nameserver: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """The ClusterFirst resolv.conf kubelet writes for a pod in `namespace`."""
    search = f"{namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}"
    return f"search {search}\nnameserver {nameserver}\noptions ndots:5\n"


def render_hosts(*, ip: str, hostname: str, fqdn: str | None = None) -> str:
    """kubelet's managed /etc/hosts: localhost entries, then the pod's own name on its IP."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if ip:
        names = f"{fqdn}\t{hostname}" if fqdn else hostname
        lines.append(f"{ip}\t{names}")
    return "\n".join(lines) + "\n"


def container_env(*, image_env: Mapping[str, str], hostname: str, path: str = DEFAULT_CONTAINER_PATH) -> dict[str, str]:
    """A container starts from a clean environment: PATH, HOSTNAME, HOME, then image/pod values."""
    env = {"PATH": path, "HOSTNAME": hostname, "HOME": "/root"}
    env.update(image_env)
    return env


def container_argv(*, netns_path: str, hostname: str, pod_dir: str, working_dir: str, argv: Sequence[str],
                   mounts: Sequence[Mount] = ()) -> list[str]:
    """The full command line that puts `argv` into the sandbox (see the module docstring)."""
    mount_args = [arg for m in mounts for arg in (m.host_path, m.container_path, "ro" if m.read_only else "rw")]
    return [
        _NSENTER, f"--net={netns_path}", "--",
        _UNSHARE, "--uts", "--mount", "--propagation", "private", "--",
        _SH, "-c", _INIT_SCRIPT, "mc-init",
        hostname, os.path.join(pod_dir, "hostname"), os.path.join(pod_dir, "resolv.conf"),
        os.path.join(pod_dir, "hosts"), os.path.join(pod_dir, SCRATCH_DIR), working_dir,
        str(len(mounts)), *mount_args,
        *argv,
    ]


def exec_problem(cmd: Sequence[str], *, path: str, working_dir: str) -> CommandNotFoundError | None:
    """Why `cmd` cannot be started in a container with this PATH and working directory, if so.
    (Containers share the node's files: the executable is looked up here, as it is there.)"""
    exe = cmd[0]
    if "/" not in exe:
        if shutil.which(exe, path=path) is None:
            return CommandNotFoundError(f'exec: "{exe}": executable file not found in $PATH', 127)
        return None
    full = exe if os.path.isabs(exe) else os.path.join(working_dir, exe)
    if not os.path.exists(full):
        return CommandNotFoundError(f'exec: "{exe}": stat {exe}: no such file or directory', 127)
    if os.path.isdir(full) or not os.access(full, os.X_OK):
        return CommandNotFoundError(f'exec: "{exe}": permission denied', 126)
    return None


def _nsenter_argv(info: ContainerInfo, cmd: Sequence[str]) -> list[str]:
    """`cmd` run in a running container's net, uts and mount namespaces, in its working dir
    (nsenter execs it: the PID is the command's own)."""
    return [_NSENTER, f"--target={info.pid}", "--net", "--uts", "--mount", f"--wd={info.working_dir}", "--",
            *cmd]


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text`: a reader sees the old or the new file, never a part (no
    fsync: see `Records`)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the runtime


def delete_netns(path: Path) -> None:
    """`ip netns delete`: unbind the namespace's file (it goes once nothing is in it) and remove it."""
    try:
        mounts.unmount(path)
    except mounts.MountError as exc:
        log.warning("unmounting network namespace %s: %s", path, exc)
    path.unlink(missing_ok=True)


def fs_info(path: Path) -> tuple[int, int]:
    """(capacity, available) bytes of the file system `path` is on, as cAdvisor's fs stats
    (available: what an unprivileged writer may still use)."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


class Runtime:
    """Sandboxes and containers of one node, kept under `state_dir`."""

    def __init__(
        self,
        *,
        node_name: str,
        state_dir: str | os.PathLike[str],
        cni: NetworkPlugin,
        cluster_dns: str = DEFAULT_CLUSTER_DNS,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
        container_path: str = DEFAULT_CONTAINER_PATH,
    ) -> None:
        self.node_name = node_name
        self.state_dir = Path(state_dir)
        self.cni = cni
        self.cluster_dns = cluster_dns
        self.cluster_domain = cluster_domain
        self.container_path = container_path
        self.records = Records(self.state_dir / "sandboxes")
        self._locks: dict[str, asyncio.Lock] = {}
        # Containers this object started: their Popen (to reap and read the exit status) and
        # the pidfd whose readability says the process ended.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._pidfds: dict[str, int] = {}
        self._io: dict[str, ContainerIO] = {}  # each container's stdio pumps (`containerio`)
        self._netns_dir_ready = False  # /run/netns made a shared mount point, as `ip netns add` does

    def _new_netns(self, path: Path) -> None:
        """`ip netns add` + `ip link set lo up`, without the two processes (`netns.new_namespaces`)."""
        if not self._netns_dir_ready:
            mounts.make_shared_mountpoint(path.parent)
            self._netns_dir_ready = True
        netns.new_namespaces({netns.CLONE_NEWNET: path})

    # ----------------------------------------------------------------- disk layout

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self.records.sandbox_dir(sandbox_id)

    def _container_dir(self, sandbox_id: str, container_id: str) -> Path:
        return self.records.container_dir(sandbox_id, container_id)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _save_sandbox(self, info: SandboxInfo) -> None:
        self.records.save_sandbox(info)

    def _load_sandbox(self, sandbox_id: str) -> SandboxInfo | None:
        return self.records.sandbox(sandbox_id)

    def _save_container(self, info: ContainerInfo) -> None:
        self.records.save_container(info)

    def _load_container(self, container_id: str) -> ContainerInfo | None:
        return self.records.container(container_id)

    # ----------------------------------------------------------------- sandboxes

    async def run_pod_sandbox(
        self,
        pod_uid: str,
        namespace: str,
        name: str,
        *,
        hostname: str | None = None,
        subdomain: str | None = None,
        port_mappings: Sequence[PortMapping] = (),
        labels: Mapping[str, str] | None = None,
        share_process_namespace: bool = False,
    ) -> SandboxInfo:
        """Create the pod's network namespace, pod files and network; returns it READY. (Host
        processes share the node's PID namespace whatever `share_process_namespace` says.)"""
        started = time.monotonic()
        problem = podinput.hostname_problem(name, hostname, subdomain)
        if problem is not None:
            raise SandboxCreateError(f"failed to generate sandbox config for pod {namespace}/{name}: {problem}")
        sandbox_id = uuid.uuid4().hex
        ns_name = netns_name(self.node_name, pod_uid, sandbox_id)
        pod_dir = self._sandbox_dir(sandbox_id)
        host = pod_hostname(name, hostname)
        info = SandboxInfo(
            id=sandbox_id, pod_uid=pod_uid, namespace=namespace, name=name, node=self.node_name,
            netns_name=ns_name, netns_path=f"{NETNS_DIR}/{ns_name}", pod_dir=str(pod_dir), hostname=host,
            state=SANDBOX_CREATING, created_at=time.time(), port_mappings=tuple(port_mappings),
            labels=dict(labels or {}), share_process_namespace=share_process_namespace,
        )
        async with self._lock(sandbox_id):
            pod_dir.mkdir(parents=True)
            (pod_dir / "containers").mkdir()
            (pod_dir / SCRATCH_DIR).mkdir(mode=0o700)
            self._save_sandbox(info)
            try:
                await asyncio.to_thread(self._new_netns, Path(info.netns_path))
                _write_atomic(pod_dir / "hostname", host + "\n")
                _write_atomic(pod_dir / "resolv.conf", render_resolv_conf(
                    namespace=namespace, nameserver=self.cluster_dns, cluster_domain=self.cluster_domain))
                _write_atomic(pod_dir / "hosts", render_hosts(ip="", hostname=host))
                result = await self.cni.add(self._runtime_conf(info))
                # Saved at once: from here on a DEL must get this as prevResult.
                info = replace(info, cni_result=dict(result.raw), ip=result.pod_ip(POD_IFNAME))
                self._save_sandbox(info)
                fqdn = f"{host}.{subdomain}.{namespace}.svc.{self.cluster_domain}" if subdomain else None
                _write_atomic(pod_dir / "hosts", render_hosts(ip=info.ip, hostname=host, fqdn=fqdn))
                info = replace(info, state=SANDBOX_READY, network_ready=True)
                self._save_sandbox(info)
            except BaseException as exc:
                log.warning("pod=%s/%s sandbox %s failed: %s", namespace, name, sandbox_id[:12], exc)
                try:
                    await asyncio.shield(self._teardown(info, remove=True))
                except Exception as cleanup_exc:  # the record stays; cleanup_orphans retries
                    log.warning("pod=%s/%s sandbox %s cleanup failed: %s", namespace, name, sandbox_id[:12],
                                cleanup_exc)
                if isinstance(exc, (CniError, procfs.CommandError, OSError)):
                    raise SandboxCreateError(f"failed to set up sandbox for pod {namespace}/{name}: {exc}") from exc
                raise
        SANDBOX_START_SECONDS.observe(time.monotonic() - started)
        log.info("pod=%s/%s sandbox %s ready ip=%s netns=%s", namespace, name, sandbox_id[:12], info.ip, ns_name)
        return info

    def _runtime_conf(self, info: SandboxInfo, *, netns: str | None = None) -> RuntimeConf:
        return RuntimeConf.for_pod(
            container_id=info.id, netns=info.netns_path if netns is None else netns,
            namespace=info.namespace, name=info.name, pod_uid=info.pod_uid, ifname=POD_IFNAME,
            port_mappings=info.port_mappings,
        )

    async def _teardown(self, info: SandboxInfo, *, remove: bool) -> SandboxInfo:
        """Kill what runs in the sandbox, CNI DEL, delete the netns; with `remove` also its files.

        Every step tolerates what is already gone, so a retry after any failure converges.
        """
        for container in self.records.containers(info.id):
            if container.state == CONTAINER_RUNNING:
                await self._stop(container, timeout=0)
        netns_exists = await asyncio.to_thread(os.path.exists, info.netns_path)
        if netns_exists:
            await self._kill_netns_processes(info.netns_path)
        cni_error: CniError | None = None
        if info.network_ready or info.state == SANDBOX_CREATING or info.cni_result is not None:
            try:
                # Without the namespace the spec says to pass CNI_NETNS empty; plugins then only
                # release what they hold outside it (IP leases, iptables chains).
                await self.cni.delete(self._runtime_conf(info, netns=info.netns_path if netns_exists else ""),
                                      prev_result=info.cni_result)
            except CniError as exc:
                cni_error = exc
        if netns_exists:
            delete_netns(Path(info.netns_path))
        if cni_error is not None:
            # Keep the record (network_ready stays set) so cleanup retries the DEL.
            info = replace(info, state=SANDBOX_NOTREADY)
            self.records.update_sandbox(info)
            raise cni_error
        info = replace(info, state=SANDBOX_NOTREADY, network_ready=False)
        if remove:
            self._forget_children(info.id)
            self.records.remove_sandbox(info.id)
        else:
            self.records.update_sandbox(info)
        return info

    async def _kill_netns_processes(self, path: str) -> None:
        """SIGKILL whatever still runs in a sandbox's netns: only processes this runtime put there."""
        for _ in range(50):
            pids = procfs.pids_in_netns(path)
            if not pids:
                return
            for pid in pids:
                procfs.signal_pid(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)
        log.warning("processes still in %s after SIGKILL: %s", path, procfs.pids_in_netns(path))

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container (no grace: kubelet stops them with grace first), CNI DEL, delete
        the netns. Idempotent; unknown ids are fine."""
        async with self._lock(sandbox_id):
            info = self._load_sandbox(sandbox_id)
            if info is None:
                return
            await self._teardown(info, remove=False)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop if needed, then remove the sandbox, its containers and files. Idempotent."""
        async with self._lock(sandbox_id):
            info = self._load_sandbox(sandbox_id)
            if info is None:
                self.records.remove_sandbox(sandbox_id)
                return
            await self._teardown(info, remove=True)
        self._locks.pop(sandbox_id, None)

    async def check_pod_network(self, sandbox_id: str) -> None:
        """CNI CHECK of a ready sandbox's attachment; raises CniError when it has drifted."""
        info = self.pod_sandbox_status(sandbox_id)
        if info.state != SANDBOX_READY or info.cni_result is None:
            raise RuntimeServiceError(f"pod sandbox {sandbox_id} is not ready")
        await self.cni.check(self._runtime_conf(info), prev_result=info.cni_result)

    def pod_sandbox_status(self, sandbox_id: str) -> SandboxInfo:
        info = self._load_sandbox(sandbox_id)
        if info is None:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found")
        return self._observed_sandbox(info)

    def _observed_sandbox(self, info: SandboxInfo) -> SandboxInfo:
        if info.state == SANDBOX_READY and not os.path.exists(info.netns_path):
            return replace(info, state=SANDBOX_NOTREADY)
        return info

    def list_pod_sandboxes(self) -> list[SandboxInfo]:
        return [self._observed_sandbox(info) for info in self.records.sandboxes()]

    async def cleanup_orphans(self, keep: set[str]) -> list[str]:
        """Remove every sandbox whose pod uid is not in `keep`, and stray namespaces of this node
        that no sandbox record names (a crash between `ip netns add` and the record). Idempotent;
        returns the removed sandbox ids."""
        removed = []
        for info in self.list_pod_sandboxes():
            if info.pod_uid not in keep:
                try:
                    await self.remove_pod_sandbox(info.id)
                except (CniError, procfs.CommandError, OSError) as exc:
                    # One stuck sandbox must not keep the others; its record stays for the next sweep.
                    log.warning("pod=%s sandbox %s not removed yet: %s", info.key, info.id[:12], exc)
                    continue
                removed.append(info.id)
        for directory in self.records.unreadable:  # what remains of a record a crash cut short
            log.info("removing %s: its record cannot be read", directory)
            mounts.unmount_under(directory)
            shutil.rmtree(directory, ignore_errors=True)
        self.records.unreadable.clear()
        known = {s.netns_name for s in self.list_pod_sandboxes()}
        # Never the namespace the agent or its CNI host side lives in, whatever its name.
        protected = {procfs.netns_id("/proc/self/ns/net")}
        if self.cni.host_netns_path:
            protected.add(procfs.netns_id(self.cni.host_netns_path))
        try:
            names = os.listdir(NETNS_DIR)
        except FileNotFoundError:
            names = []
        for ns in names:
            if (is_sandbox_netns_name(self.node_name, ns) and ns not in known
                    and procfs.netns_id(f"{NETNS_DIR}/{ns}") not in protected):
                log.info("deleting stray network namespace %s", ns)
                await self._kill_netns_processes(f"{NETNS_DIR}/{ns}")
                delete_netns(Path(NETNS_DIR) / ns)
        return removed

    # ----------------------------------------------------------------- images (CRI ImageService)

    def image_status(self, ref: str) -> Image | None:
        """Host processes have no images to fetch: every well-formed name is "present" (the
        pod's own command says what runs)."""
        parsed = reference.parse(ref)  # InvalidImageNameError for a malformed name
        return Image(id="", repo_tags=(str(parsed),), repo_digests=(), size=0, config=ImageConfig(), diff_ids=())

    async def pull_image(self, ref: str, *, keyring: Mapping[str, Any] | None = None) -> Image:
        present = self.image_status(ref)
        assert present is not None
        return present

    def list_images(self) -> list[Image]:
        return []  # nothing is stored, nothing to list or collect

    async def remove_image(self, image_id: str) -> None:
        return None

    def image_fs_info(self) -> tuple[int, int]:
        return fs_info(self.state_dir)

    # ----------------------------------------------------------------- containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        """Record the container with its command as the node's program; raises
        ContainerCreateError (no command, executable or workingDir missing)."""
        sandbox = self._load_sandbox(sandbox_id)
        if sandbox is None:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found")
        # No image: its ENTRYPOINT is taken as empty, so `args` alone is the command too (as for busybox).
        argv = (*(config.command or ()), *(config.args or ()))
        if not argv:
            raise ContainerCreateError(
                f'the host-process runtime runs a container\'s command on the node, and container "{config.name}" '
                f'gives none (its image "{config.image}" is not run here: use --container-runtime runc)')
        working_dir = config.working_dir or "/"
        env = container_env(image_env=config.env, hostname=sandbox.hostname, path=self.container_path)
        problem = podinput.env_problem(env) or podinput.exec_args_problem(argv, working_dir)
        if problem is not None:
            raise ContainerCreateError(problem)
        executable = argv[0]
        if "/" not in executable and shutil.which(executable, path=env["PATH"]) is None:
            raise ContainerCreateError(f'exec: "{executable}": executable file not found in $PATH')
        if "/" in executable and not os.access(executable, os.X_OK):
            raise ContainerCreateError(f'exec: "{executable}": no such file or not executable')
        if not await asyncio.to_thread(os.path.isdir, working_dir):
            raise ContainerCreateError(f"working directory {working_dir!r} does not exist on this node")
        container_id = uuid.uuid4().hex
        log_path = Path(sandbox.pod_dir) / "logs" / config.name / f"{config.attempt}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        info = ContainerInfo(
            id=container_id, sandbox_id=sandbox_id, name=config.name, image=config.image, attempt=config.attempt,
            argv=argv, env=env, working_dir=working_dir, log_path=str(log_path),
            state=CONTAINER_CREATED, created_at=time.time(), mounts=tuple(config.mounts),
            stdin=config.stdin, stdin_once=config.stdin_once, tty=config.tty,
        )
        self._container_dir(sandbox_id, container_id).mkdir(parents=True)
        self._save_container(info)
        return info

    async def start_container(self, container_id: str) -> ContainerInfo:
        async with self._lock(container_id):
            info = self._load_container(container_id)
            if info is None:
                raise NotFoundError(f"container {container_id} not found")
            if info.state != CONTAINER_CREATED:
                raise ContainerStartError(f"container {container_id} is {info.state}, not created")
            sandbox = self._load_sandbox(info.sandbox_id)
            if sandbox is None or self._observed_sandbox(sandbox).state != SANDBOX_READY:
                raise ContainerStartError(f"pod sandbox {info.sandbox_id} is not ready")
            argv = container_argv(netns_path=sandbox.netns_path, hostname=sandbox.hostname,
                                  pod_dir=sandbox.pod_dir, working_dir=info.working_dir, argv=info.argv,
                                  mounts=info.mounts)
            # Started on the event loop's thread on purpose (the FIFOs and fork take well under a
            # millisecond): a sync cancelled meanwhile can never leave a process unrecorded.
            io = ContainerIO(self._container_dir(info.sandbox_id, container_id), info.log_path,
                             stdin=info.stdin, stdin_once=info.stdin_once, tty=info.tty)
            try:
                stdin, stdout, stderr = io.child_stdio()
                # A new session: the container leads its own process group, so stop can signal
                # everything it forked, and a signal to the agent's group never reaches it.
                child = subprocess.Popen(  # noqa: ASYNC220
                    io.wrap(argv), env=dict(info.env), stdin=stdin, stdout=stdout, stderr=stderr,
                    start_new_session=True, close_fds=True)
            except (OSError, ValueError) as exc:  # ValueError: what exec cannot take (a stored record)
                io.abandon()
                raise ContainerStartError(f"starting container {info.name}: {exc}") from exc
            io.started()
            self._io[info.id] = io
            ticks = procfs.start_ticks(child.pid)
            info = replace(info, state=CONTAINER_RUNNING, pid=child.pid, pid_start_ticks=ticks, started_at=time.time())
            self._save_container(info)
            self._watch_child(info, child)
        await self._wait_exec(child.pid, ticks)
        log.info("container %s (%s) started pid=%d", info.name, container_id[:12], child.pid)
        return info

    @staticmethod
    async def _wait_exec(pid: int, ticks: int | None, timeout: float = 5.0) -> None:
        """Until the process has become the container's command: before that it is still nsenter,
        unshare or the mount script, and an exec into its namespaces (a postStart hook, a probe)
        would not yet see the container's mounts -- or would see the node's."""
        deadline = time.monotonic() + timeout
        while procfs.is_alive(pid, ticks) and time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:  # noqa: ASYNC230 a /proc read does not block
                    parts = f.read().split(b"\0")
            except OSError:
                return
            # an empty command line is a process in the middle of an exec: not there yet
            if parts[0] and parts[0].decode(errors="replace") not in (_NSENTER, _UNSHARE) \
                    and parts[3:4] != [b"mc-init"]:
                return
            await asyncio.sleep(0.005)

    def _watch_child(self, info: ContainerInfo, child: subprocess.Popen[bytes]) -> None:
        self._children[info.id] = child
        try:
            loop = asyncio.get_running_loop()
            pidfd = os.pidfd_open(child.pid)
        except (RuntimeError, OSError):
            return
        self._pidfds[info.id] = pidfd
        loop.add_reader(pidfd, self._on_child_exit, info.id)

    def _on_child_exit(self, container_id: str) -> None:
        child = self._children.get(container_id)
        if child is None or child.poll() is None:
            return
        self._unwatch(container_id)
        info = self._load_container(container_id)
        if info is None or info.state != CONTAINER_RUNNING or info.pid != child.pid:
            return
        self._save_container(self._exited(info, procfs.exit_code_from_returncode(child.returncode)))

    def _unwatch(self, container_id: str) -> None:
        pidfd = self._pidfds.pop(container_id, None)
        if pidfd is not None:
            try:
                asyncio.get_running_loop().remove_reader(pidfd)
            except RuntimeError:
                pass
            os.close(pidfd)

    def _forget_children(self, sandbox_id: str) -> None:
        for container in self.records.containers(sandbox_id):
            if container.id in self._children:
                self._unwatch(container.id)
                self._children.pop(container.id, None)
            if container.id in self._io:
                self._io.pop(container.id).close()

    def _exited(self, info: ContainerInfo, exit_code: int | None, *, message: str = "") -> ContainerInfo:
        """The record of an ended container (a method: the OCI runtime also asks its cgroup why)."""
        if exit_code is None:
            reason = "Unknown"
        else:
            reason = "Completed" if exit_code == 0 else "Error"
        return replace(info, state=CONTAINER_EXITED, exit_code=exit_code, finished_at=time.time(), reason=reason,
                       message=message)

    def _observed_container(self, info: ContainerInfo) -> ContainerInfo:
        """Disk says RUNNING; check the process. A dead one is recorded as exited."""
        if info.state != CONTAINER_RUNNING or procfs.is_alive(info.pid, info.pid_start_ticks):
            return info
        child = self._children.get(info.id)
        code = None
        if child is not None and child.poll() is not None:
            code = procfs.exit_code_from_returncode(child.returncode)
            self._unwatch(info.id)
        exited = self._exited(info, code, message="" if code is not None else "exited while not watched by this agent")
        self.records.update_container(exited)
        return exited

    def container_status(self, container_id: str) -> ContainerInfo:
        info = self._load_container(container_id)
        if info is None:
            raise NotFoundError(f"container {container_id} not found")
        return self._observed_container(info)

    def container_io(self, container_id: str) -> ContainerIO | None:
        """The container's stdio (its log pumps, attach and stdin); None when this agent has none
        for it. A running container started by an earlier agent is adopted here."""
        io = self._io.get(container_id)
        if io is not None:
            return io
        info = self._load_container(container_id)
        if info is None or self._observed_container(info).state != CONTAINER_RUNNING:
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        io = ContainerIO.adopt(self._container_dir(info.sandbox_id, info.id), info.log_path,
                               stdin=info.stdin, stdin_once=info.stdin_once)
        if io is not None:
            self._io[info.id] = io
        return io

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]:
        out = [self._observed_container(info) for info in self.records.containers(sandbox_id)]
        for info in out:  # output of what an earlier agent started keeps reaching its log
            if info.state == CONTAINER_RUNNING and info.id not in self._io:
                self.container_io(info.id)
        return out

    async def stop_container(self, container_id: str, timeout: float = 30.0) -> ContainerInfo:
        """SIGTERM the container's process group, SIGKILL it after `timeout` seconds. Idempotent."""
        async with self._lock(container_id):
            info = self._load_container(container_id)
            if info is None:
                raise NotFoundError(f"container {container_id} not found")
            return await self._stop(info, timeout=timeout)

    async def _stop(self, info: ContainerInfo, *, timeout: float) -> ContainerInfo:
        info = self._observed_container(info)
        if info.state == CONTAINER_CREATED:
            info = self._exited(info, None, message="stopped before it started")
            self._save_container(info)
            return info
        if info.state != CONTAINER_RUNNING:
            return info
        pid, ticks = info.pid, info.pid_start_ticks or 0
        last_signal = signal.SIGTERM
        if timeout > 0:
            procfs.signal_group(pid, signal.SIGTERM)
            await self._wait_dead(pid, ticks, timeout)
        if procfs.is_alive(pid, ticks):
            last_signal = signal.SIGKILL
            procfs.signal_group(pid, signal.SIGKILL)
            await self._wait_dead(pid, ticks, 10.0)
        # Whatever the leader forked into its group and left behind goes too.
        for member in procfs.group_members(pid, not_before_ticks=ticks):
            procfs.signal_pid(member, signal.SIGKILL)
        child = self._children.get(info.id)
        if child is not None:
            try:
                child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        code = (procfs.exit_code_from_returncode(child.returncode)
                if child is not None and child.returncode is not None else 128 + int(last_signal))
        self._unwatch(info.id)
        self._children.pop(info.id, None)
        current = self._load_container(info.id) or info
        if current.state == CONTAINER_EXITED:
            return current
        stopped = self._exited(info, code)
        self._save_container(stopped)
        return stopped

    @staticmethod
    async def _wait_dead(pid: int, ticks: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Polling: the process may not be our child (adopted after an agent restart), and is_alive
        # also checks its start time against PID reuse; no event tells of that, only /proc does.
        while procfs.is_alive(pid, ticks) and time.monotonic() < deadline:  # noqa: ASYNC110 polls /proc
            await asyncio.sleep(0.02)

    async def _release(self, info: ContainerInfo) -> None:
        """What an ended container still holds besides its directory (nothing, for a process)."""

    async def remove_container(self, container_id: str) -> None:
        """Kill if running, then forget the container. Its log stays with the sandbox. Idempotent."""
        async with self._lock(container_id):
            info = self._load_container(container_id)
            if info is None:
                return
            await self._stop(info, timeout=0)
            await self._release(info)
            io = self._io.pop(container_id, None)
            if io is not None:
                io.close()
            self.records.remove_container(info)
        self._locks.pop(container_id, None)

    # The exec hooks an OCI runtime replaces: what cannot run, and the command line that runs it.

    def _exec_check(self, info: ContainerInfo, cmd: Sequence[str]) -> CommandNotFoundError | None:
        """Why `cmd` cannot run in the container (RuntimeServiceError if the container does not run)."""
        if not cmd:
            raise RuntimeServiceError("an exec needs a command")
        if info.state != CONTAINER_RUNNING:
            raise RuntimeServiceError(f"container {info.name} is not running")
        return exec_problem(cmd, path=info.env.get("PATH", ""), working_dir=info.working_dir)

    def _exec_argv(self, info: ContainerInfo, cmd: Sequence[str]) -> tuple[list[str], Mapping[str, str]]:
        """The command line (and its environment) that runs `cmd` in the container."""
        return _nsenter_argv(info, cmd), info.env

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *,
                        timeout: float = 10.0) -> tuple[int, bytes, bytes]:
        """Run `cmd` in the container and wait: (exit code, stdout, stderr)."""
        info = self.container_status(container_id)
        problem = self._exec_check(info, cmd)
        if problem is not None:
            return problem.exit_code, b"", f"{problem}\n".encode()
        argv, env = self._exec_argv(info, cmd)
        proc = await asyncio.create_subprocess_exec(
            *argv, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ExecTimeoutError(f"command {list(cmd)} timed out after {timeout}s") from None
        assert proc.returncode is not None
        return procfs.exit_code_from_returncode(proc.returncode), out, err

    async def exec_stream(self, container_id: str, cmd: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool,
                          tty: bool) -> ExecProcess:
        """Start `cmd` in the container with its streams (or a pty) open to the caller; raises
        CommandNotFoundError when there is nothing to run, RuntimeServiceError when the
        container is not running."""
        info = self.container_status(container_id)
        problem = self._exec_check(info, cmd)
        if problem is not None:
            raise problem
        argv, env = self._exec_argv(info, cmd)
        try:
            return await ExecProcess.start(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                                           setsid=_SETSID)
        except OSError as exc:
            raise RuntimeServiceError(f"starting {list(cmd)} in container {info.name}: {exc}") from exc

    def close(self) -> None:
        """Stop watching children (the processes keep running, as after an agent restart)."""
        for cid in list(self._pidfds):
            self._unwatch(cid)
        for io in self._io.values():
            io.close()
        self._io.clear()
