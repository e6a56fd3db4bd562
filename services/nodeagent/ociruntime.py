"""Containers from OCI images, run by runc (or crun) inside the pod's sandbox.

The sandbox is `runtime.Runtime`'s (the CNI-made network namespace, the pod's files) plus what
a pause container holds in kube's design, without a process: the pod's IPC and UTS namespaces,
made once and kept by bind mounts (`unshare --ipc=FILE --uts=FILE hostname NAME`: the hostname
is set there), and the pod's /dev/shm, a tmpfs every container of the pod mounts.

A container is an OCI bundle in its directory:
- `rootfs`: an overlay of the image's unpacked layers (shared, read-only) and an upper layer of
  its own, mounted when it starts and unmounted when it is removed;
- `config.json` from `oci.spec` (the pod's namespaces joined by path, its files and volumes
  bind-mounted, containerd's defaults) with its securityContext and resources applied;
- its cgroup `/minicluster/<node>/pod<uid>/<container id>` (runc makes it; the pod's level is
  removed with the sandbox).
`runc run --detach` starts it with the FIFOs (or terminal) of `containerio` as its stdio, so
logs and attach work as before; the agent is a child subreaper, so the container's first
process becomes its child and its exit status is read from it. A container is stopped by
signalling that process (the image's StopSignal, then SIGKILL): the kernel ends its PID
namespace with it. After an agent restart, what still runs is adopted from the records (the
PID and its start time), as the host-process runtime does.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.nodeagent import netns, procfs
from services.nodeagent.containerio import ContainerIO
from services.nodeagent.oci import mounts, resources, security, spec
from services.nodeagent.oci.cgroups import (
    CGROUP_PARENT,
    cgroup_dirs,
    cgroup_parent,
    empty_memory,
    oom_kills,
    remove_cgroups,
)
from services.nodeagent.oci.image import Image, ImageNotPresentError, ImagePullError, ImageStore
from services.nodeagent.oci.registry import Credential, Puller
from services.nodeagent.oci.runc import Runc, RuncError
from services.nodeagent.runtime import (
    CONTAINER_CREATED,
    CONTAINER_RUNNING,
    CommandNotFoundError,
    ContainerConfig,
    ContainerCreateError,
    ContainerInfo,
    ContainerStartError,
    NotFoundError,
    Runtime,
    RuntimeServiceError,
    SandboxCreateError,
    SandboxInfo,
    _which,
    fs_info,
)

log = logging.getLogger(__name__)


class ContainerConfigError(RuntimeServiceError):
    """The securityContext or resources cannot be honoured (kubelet: CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"

_UNSHARE = _which("unshare")
_NSENTER = _which("nsenter")
_SLEEP = _which("sleep")
SHM_OPTIONS = "mode=1777,size=65536k"  # containerd's sandbox /dev/shm


def resolve_in_root(root: Path, path: str, *, depth: int = 40) -> Path | None:
    """`path` as the container would see it: symlinks resolved inside `root`; None if missing."""
    parts = [p for p in path.split("/") if p and p != "."]
    current = root
    while parts:
        name = parts.pop(0)
        if name == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / name
        if candidate.is_symlink():
            if depth <= 0:
                return None
            target = os.readlink(candidate)
            rest = "/".join(parts)
            base = root if target.startswith("/") else current
            resolved = resolve_in_root(root, f"{os.path.relpath(base, root)}/{target}/{rest}", depth=depth - 1)
            return resolved
        if not candidate.exists():
            return None
        current = candidate
    return current


def lookup_executable(root: Path, name: str, *, path_env: str, cwd: str) -> str | None:
    """Why `name` cannot be executed in the container, as runc's exec would say; None if it can."""
    if "/" in name:
        target = resolve_in_root(root, name if name.startswith("/") else f"{cwd}/{name}")
        if target is None:
            return f'exec: "{name}": stat {name}: no such file or directory'
        if target.is_dir() or not os.access(target, os.X_OK):
            return f'exec: "{name}": permission denied'
        return None
    for directory in path_env.split(":"):
        target = resolve_in_root(root, f"{directory or '.'}/{name}")
        if target is not None and target.is_file() and os.access(target, os.X_OK):
            return None
    return f'exec: "{name}": executable file not found in $PATH'


def _pid_namespace_holder(netns_path: str) -> int | None:
    """The `sleep` in the pod's network namespace that is PID 1 of a PID namespace of its own."""
    mine = os.readlink("/proc/self/ns/pid")
    for pid in procfs.pids_in_netns(netns_path):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            theirs = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            continue
        if comm == "sleep" and theirs != mine:
            return pid
    return None


def _stop_signal(name: str) -> signal.Signals:
    name = name.upper()
    if name and not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return signal.Signals[name] if name else signal.SIGTERM
    except KeyError:
        return signal.SIGTERM


class OciRuntime(Runtime):
    """`Runtime`'s sandboxes, with containers made from images and run by an OCI runtime."""

    def __init__(self, *, images: ImageStore, runtime_binary: str = "runc", puller: Puller | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images
        self.puller = puller
        self.runc = Runc(root=self.state_dir / "runc", binary=runtime_binary)
        (self.state_dir / "runc").mkdir(parents=True, exist_ok=True)
        self._exit_codes: dict[str, int] = {}  # reaped here, until the record says so
        self.memory_capacity = resources.node_memory()

    # ----------------------------------------------------------------- the pod's namespaces

    @staticmethod
    def _ns_dir(info: SandboxInfo) -> Path:
        return Path(info.pod_dir) / "ns"

    async def run_pod_sandbox(self, pod_uid: str, namespace: str, name: str, **kwargs: Any) -> SandboxInfo:
        info = await super().run_pod_sandbox(pod_uid, namespace, name, **kwargs)
        try:
            await self._make_pod_namespaces(info)
        except (OSError, procfs.CommandError) as exc:
            await self.remove_pod_sandbox(info.id)
            raise SandboxCreateError(f"failed to set up sandbox for pod {namespace}/{name}: {exc}") from exc
        return info

    async def _make_pod_namespaces(self, info: SandboxInfo) -> None:
        ns = self._ns_dir(info)
        ns.mkdir(exist_ok=True)
        (ns / "shm").mkdir(exist_ok=True)
        mounts.mount_tmpfs(ns / "shm", SHM_OPTIONS)
        await asyncio.to_thread(netns.new_namespaces, {netns.CLONE_NEWIPC: ns / "ipc", netns.CLONE_NEWUTS: ns / "uts"},
                                hostname=info.hostname)
        if info.share_process_namespace:
            await self._start_pod_pid_namespace(info)

    async def _start_pod_pid_namespace(self, info: SandboxInfo) -> None:
        """shareProcessNamespace: a PID namespace for the pod, whose first process (kube's pause;
        here `sleep infinity`, in the pod's network namespace so it goes with the sandbox) keeps it
        alive; its containers join it by the bind-mounted ns/pid."""
        await asyncio.create_subprocess_exec(
            _NSENTER, f"--net={info.netns_path}", "--", _UNSHARE, "--pid", "--fork", "--kill-child", _SLEEP,
            "infinity", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        target = self._ns_dir(info) / "pid"
        target.touch()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid = _pid_namespace_holder(info.netns_path)
            if pid is not None:
                mounts.bind(Path(f"/proc/{pid}/ns/pid"), target)
                return
            await asyncio.sleep(0.005)
        raise OSError("the pod's PID namespace did not come up")

    async def _teardown(self, info: SandboxInfo, *, remove: bool) -> SandboxInfo:
        result = await super()._teardown(info, remove=False)
        for container in self.records.containers(info.id):
            await self._release(container)
        ns = self._ns_dir(info)
        for name in ("shm", "ipc", "uts", "pid"):
            mounts.unmount(ns / name)
        remove_cgroups(cgroup_parent(self.node_name, info.pod_uid))
        if remove:
            self._forget_children(info.id)
            self.records.remove_sandbox(info.id)
        return result

    async def cleanup_orphans(self, keep: set[str]) -> list[str]:
        """`Runtime.cleanup_orphans`, then the runtime's containers that no record names (a crash
        between `runc run` and the record, or records removed by hand)."""
        removed = await super().cleanup_orphans(keep)
        self._remove_stale_pod_cgroups()
        known = {container.id for container in self.records.containers()}
        try:
            ids = await self.runc.list_ids()
        except RuncError as exc:
            log.warning("listing the OCI runtime's containers: %s", exc)
            return removed
        for container_id in ids:
            if container_id not in known:
                log.info("deleting container %s: the OCI runtime has it, no record names it", container_id[:12])
                try:
                    await self.runc.delete(container_id)
                except RuncError as exc:
                    log.warning("container %s not deleted: %s", container_id[:12], exc)
        return removed

    def _remove_stale_pod_cgroups(self) -> None:
        """Pod cgroups of this node that no sandbox names: left by a node that went away without
        removing its pods (a node container stopped by `docker compose down`). Empty once their
        processes are gone, so rmdir takes them; one still in use stays."""
        wanted = {f"pod{s.pod_uid}" for s in self.list_pod_sandboxes()}
        node = f"/{CGROUP_PARENT}/{self.node_name}"
        stale = {d.name for top in cgroup_dirs(node) if top.is_dir() for d in top.iterdir()
                 if d.is_dir() and d.name.startswith("pod") and d.name not in wanted}
        for name in sorted(stale):
            remove_cgroups(f"{node}/{name}")

    # ----------------------------------------------------------------- containers

    def _bundle(self, info: ContainerInfo) -> Path:
        return self._container_dir(info.sandbox_id, info.id) / "bundle"

    # ----------------------------------------------------------------- images (CRI ImageService)

    def image_status(self, ref: str) -> Image | None:
        return self.images.get(ref)

    async def pull_image(self, ref: str, *, keyring: Mapping[str, Credential] | None = None) -> Image:
        if self.puller is None:
            raise ImagePullError(f'failed to pull and unpack image "{ref}": this node pulls no images '
                                 f"(load it with `minikubectl image load`)")
        return await self.puller.pull(ref, keyring=keyring)

    def list_images(self) -> list[Image]:
        return self.images.images()

    async def remove_image(self, image_id: str) -> None:
        await asyncio.to_thread(self.images.remove, image_id)

    def image_fs_info(self) -> tuple[int, int]:
        return fs_info(self.images.root)

    def _image(self, ref: str) -> Image:
        image = self.images.get(ref)
        if image is None:
            raise ImageNotPresentError(f'image "{ref}" is not present on this node')
        return image

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        """Record the container with the process its image and spec give; raises
        image.ImageNotPresentError or ContainerCreateError."""
        sandbox = self._load_sandbox(sandbox_id)
        if sandbox is None:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found")
        image = self._image(config.image)  # the image manager made sure it is here
        try:
            argv = spec.process_args(image.config, config.command, config.args)
        except spec.ProcessArgsError as exc:
            raise ContainerCreateError(str(exc)) from exc
        env = dict(item.partition("=")[::2] for item in spec.process_env(
            image.config, hostname=sandbox.hostname, env=config.env))
        if config.tty:
            env.setdefault("TERM", "xterm")  # containerd's, for a container with a terminal
        container_id = uuid.uuid4().hex
        log_path = Path(sandbox.pod_dir) / "logs" / config.name / f"{config.attempt}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        info = ContainerInfo(
            id=container_id, sandbox_id=sandbox_id, name=config.name, image=config.image, attempt=config.attempt,
            argv=argv, env=env, working_dir=spec.working_dir(image.config, config.working_dir),
            log_path=str(log_path), state=CONTAINER_CREATED, created_at=time.time(), mounts=tuple(config.mounts),
            stdin=config.stdin, stdin_once=config.stdin_once, tty=config.tty,
            image_id=image.repo_digests[0] if image.repo_digests else image.id,
            stop_signal=image.config.stop_signal,
        )
        directory = self._container_dir(sandbox_id, container_id)
        for sub in ("bundle/rootfs", "upper", "work"):
            (directory / sub).mkdir(parents=True)
        self._save_container(info)
        try:
            self._write_bundle(info, sandbox, config, image)
        except BaseException:
            await self.remove_container(container_id)
            raise
        return info

    def _write_bundle(self, info: ContainerInfo, sandbox: SandboxInfo, config: ContainerConfig, image: Image) -> None:
        """Mount the rootfs and write config.json: the user is resolved in the image's own files,
        as containerd does at CreateContainer."""
        try:
            rootfs = self._mount_rootfs(info)
        except OSError as exc:
            raise ContainerCreateError(f"failed to mount the container's rootfs: {exc}") from exc
        oci = self._spec(info, sandbox)
        try:
            settings = security.container_security(pod=config.pod, container=config.spec,
                                                   image_user_text=image.config.user, rootfs=rootfs)
            oci["linux"]["resources"].update(resources.linux_resources(config.spec))
        except (security.SecurityContextError, ValueError) as exc:
            raise ContainerConfigError(str(exc)) from exc
        settings.apply_to(oci)
        if config.pod:
            oci["process"]["oomScoreAdj"] = resources.oom_score_adj(config.pod, config.spec, self.memory_capacity)
        (self._bundle(info) / "config.json").write_text(json.dumps(oci, indent=1))

    def _spec(self, info: ContainerInfo, sandbox: SandboxInfo) -> dict[str, Any]:
        ns, pod_dir = self._ns_dir(sandbox), Path(sandbox.pod_dir)
        bundle = self._bundle(info)
        pod_files = [spec.BindMount(str(pod_dir / name), f"/etc/{name}")
                     for name in ("hosts", "hostname", "resolv.conf")]
        volumes = [spec.BindMount(m.host_path, m.container_path, m.read_only) for m in info.mounts if m.host_path]
        return spec.runtime_spec(spec.ContainerSpecInput(
            rootfs=str(bundle / "rootfs"), argv=info.argv, env=tuple(f"{k}={v}" for k, v in info.env.items()),
            cwd=info.working_dir, netns=sandbox.netns_path, ipcns=str(ns / "ipc"), utsns=str(ns / "uts"),
            shm=str(ns / "shm"), pidns=str(ns / "pid") if sandbox.share_process_namespace else "",
            cgroups_path=f"{cgroup_parent(self.node_name, sandbox.pod_uid)}/{info.id}",
            pod_files=pod_files, volumes=volumes, terminal=info.tty,
            annotations={"io.kubernetes.cri.sandbox-id": sandbox.id, "io.kubernetes.cri.container-name": info.name,
                         "io.kubernetes.pod.namespace": sandbox.namespace, "io.kubernetes.pod.name": sandbox.name},
        ))

    def _mount_rootfs(self, info: ContainerInfo) -> Path:
        directory = self._container_dir(info.sandbox_id, info.id)
        rootfs = self._bundle(info) / "rootfs"
        if not mounts.is_mountpoint(rootfs):
            image = self._image(info.image_id or info.image)
            mounts.mount_overlay(rootfs, lowers=self.images.layer_dirs(image), upper=directory / "upper",
                                 work=directory / "work")
        return rootfs

    async def start_container(self, container_id: str) -> ContainerInfo:
        async with self._lock(container_id):
            info = self._load_container(container_id)
            if info is None:
                raise NotFoundError(f"container {container_id} not found")
            if info.state != CONTAINER_CREATED:
                raise ContainerStartError(f"container {container_id} is {info.state}, not created")
            sandbox = self._load_sandbox(info.sandbox_id)
            if sandbox is None or self._observed_sandbox(sandbox).state != "SANDBOX_READY":
                raise ContainerStartError(f"pod sandbox {info.sandbox_id} is not ready")
            try:
                rootfs = self._mount_rootfs(info)
            except (OSError, ImageNotPresentError) as exc:
                raise ContainerStartError(f"failed to mount the container's rootfs: {exc}") from exc
            problem = lookup_executable(rootfs, info.argv[0], path_env=info.env.get("PATH", ""),
                                        cwd=info.working_dir)
            if problem is not None:
                raise ContainerStartError(
                    f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                    f"runc create failed: unable to start container process: {problem}: unknown")
            info = await self._run(info, self._bundle(info))
        log.info("container %s (%s) started pid=%d", info.name, container_id[:12], info.pid)
        return info

    async def _run(self, info: ContainerInfo, bundle: Path) -> ContainerInfo:
        io = ContainerIO(self._container_dir(info.sandbox_id, info.id), info.log_path,
                         stdin=info.stdin, stdin_once=info.stdin_once, tty=info.tty)
        try:
            if info.tty:
                pid, master = await self.runc.run_with_terminal(info.id, bundle)
                io.terminal_from_runtime(master)
            else:
                pid = await self.runc.run_detached(info.id, bundle, stdio=io.child_stdio())
        except (OSError, RuncError) as exc:
            io.abandon()
            raise ContainerStartError(f"failed to start container {info.name!r}: {exc}") from exc
        io.started()
        self._io[info.id] = io
        info = replace(info, state=CONTAINER_RUNNING, pid=pid, pid_start_ticks=procfs.start_ticks(pid),
                       started_at=time.time())
        self._save_container(info)
        self._watch_pid(info)
        return info

    def _watch_pid(self, info: ContainerInfo) -> None:
        """The container's first process is our child (we are its subreaper): its exit wakes us."""
        try:
            pidfd = os.pidfd_open(info.pid)
        except OSError:
            return
        self._pidfds[info.id] = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._on_pid_exit, info.id, info.pid)

    def _on_pid_exit(self, container_id: str, pid: int) -> None:
        reaped, code = self._reap(pid)
        if not reaped:
            return
        self._unwatch(container_id)
        if code is None:  # not our child after all: its end is seen in /proc instead
            return
        self._exit_codes[container_id] = code
        info = self._load_container(container_id)
        if info is None or info.state != CONTAINER_RUNNING or info.pid != pid:
            return
        self._save_container(self._exited(info, code))

    def _exited(self, info: ContainerInfo, exit_code: int | None, *, message: str = "") -> ContainerInfo:
        """As `Runtime._exited`, and a SIGKILL by the OOM killer (its memory limit) is OOMKilled."""
        exited = super()._exited(info, exit_code, message=message)
        if exit_code == 128 + signal.SIGKILL:
            sandbox = self._load_sandbox(info.sandbox_id)
            if sandbox is not None and oom_kills(f"{cgroup_parent(self.node_name, sandbox.pod_uid)}/{info.id}"):
                exited = replace(exited, reason="OOMKilled")
        return exited

    @staticmethod
    def _reap(pid: int) -> tuple[bool, int | None]:
        """(whether the process is gone, its exit code if it was our child)."""
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True, None
        if waited == 0:
            return False, None
        return True, procfs.exit_code_from_returncode(os.waitstatus_to_exitcode(status))

    def _observed_container(self, info: ContainerInfo) -> ContainerInfo:
        if info.state != CONTAINER_RUNNING or procfs.is_alive(info.pid, info.pid_start_ticks):
            return info
        code = self._exit_codes.get(info.id)
        if code is None:
            reaped, code = self._reap(info.pid)
            if reaped:
                self._unwatch(info.id)
        exited = self._exited(info, code, message="" if code is not None else "exited while not watched by this agent")
        self.records.update_container(exited)
        return exited

    async def _stop(self, info: ContainerInfo, *, timeout: float) -> ContainerInfo:
        """The image's stop signal, SIGKILL after `timeout` seconds; the kernel ends the
        container's PID namespace with its first process."""
        info = self._observed_container(info)
        if info.state == CONTAINER_CREATED:
            info = self._exited(info, None, message="stopped before it started")
            self._save_container(info)
            return info
        if info.state != CONTAINER_RUNNING:
            return info
        pid, ticks = info.pid, info.pid_start_ticks or 0
        last_signal = _stop_signal(info.stop_signal)
        if timeout > 0:
            procfs.signal_pid(pid, last_signal)
            await self._wait_dead(pid, ticks, timeout)
        if procfs.is_alive(pid, ticks):
            last_signal = signal.SIGKILL
            procfs.signal_pid(pid, signal.SIGKILL)
            await self._wait_dead(pid, ticks, 10.0)
        reaped, code = self._reap(pid)
        if code is None:
            code = self._exit_codes.get(info.id, 128 + int(last_signal))
        self._unwatch(info.id)
        current = self._load_container(info.id) or info
        if current.state != CONTAINER_RUNNING:
            return current
        stopped = self._exited(info, code)
        self._save_container(stopped)
        return stopped

    async def _release(self, info: ContainerInfo) -> None:
        """What an ended container still holds: the runtime's record and cgroup, its rootfs mount."""
        sandbox = self._load_sandbox(info.sandbox_id)
        if sandbox is not None:  # before `runc delete` removes the cgroup
            empty_memory(f"{cgroup_parent(self.node_name, sandbox.pod_uid)}/{info.id}")
        try:
            await self.runc.delete(info.id)
        except RuncError as exc:
            log.warning("container %s (%s): %s", info.name, info.id[:12], exc)
        mounts.unmount(self._bundle(info) / "rootfs")
        self._exit_codes.pop(info.id, None)

    # ----------------------------------------------------------------- exec

    def _exec_check(self, info: ContainerInfo, cmd: Sequence[str]) -> CommandNotFoundError | None:
        """What runc's exec would refuse: the command looked up in the container's own files."""
        if not cmd:
            raise RuntimeServiceError("an exec needs a command")
        if info.state != CONTAINER_RUNNING:
            raise RuntimeServiceError(f"container {info.name} is not running")
        problem = lookup_executable(self._bundle(info) / "rootfs", cmd[0], path_env=info.env.get("PATH", ""),
                                    cwd=info.working_dir)
        if problem is None:
            return None
        return CommandNotFoundError(problem, 126 if "permission denied" in problem else 127)

    def _exec_argv(self, info: ContainerInfo, cmd: Sequence[str]) -> tuple[list[str], Mapping[str, str]]:
        """`runc exec`: the container's namespaces, cgroup, user and environment come from its config."""
        return self.runc.exec_argv(info.id, cmd), {"PATH": os.environ.get("PATH", "")}
