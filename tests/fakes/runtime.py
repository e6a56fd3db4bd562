"""A container runtime in memory: `cri.ContainerRuntime` without namespaces, processes or root.

Sandboxes get their address from a network plugin (a `FakeCni` unless told otherwise) and give
it back when stopped or removed, as the real runtime's CNI ADD/DEL do. Containers are records:
a started one is RUNNING until the test ends it (`exit`) or the agent stops it (exit code 143,
SIGTERM's, as a process that obeys it reports). Ids are `sb1, sb2, ...` and `c1, c2, ...` in order
of creation, and timestamps only grow, so "the newest sandbox" is always well defined.

`calls` records what was asked, by pod uid and container name rather than id, so a test can
spell the expected calls out. `fail_sandbox` and `fail_create` (by container name) make the next
calls fail the way the real runtime does (SandboxCreateError, ImagePullError, ...).

Images: every image is present (and pulls fine) unless the test sets `images` (normalized
name -> Image) to say which are; `registry` says what a pull of a reference gives (an Image,
now present, or the exception it raises); with `images` set, a reference it does not list fails
as not found.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from services.nodeagent.cni import NetworkPlugin, PortMapping, RuntimeConf
from services.nodeagent.execproc import ExecProcess
from services.nodeagent.oci import reference
from services.nodeagent.oci.image import Image, ImageConfig, ImagePullError
from services.nodeagent.oci.registry import Credential
from services.nodeagent.runtime import (
    CONTAINER_CREATED,
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    ContainerInfo,
    ContainerStartError,
    NotFoundError,
    RuntimeServiceError,
    SandboxInfo,
)
from tests.fakes.cni import FakeCni

SIGTERM_EXIT = 143


def fake_image(name: str, size: int = 1000) -> Image:
    return Image(id=f"sha256:{abs(hash(name)):064x}"[:71], repo_tags=(name,), repo_digests=(), size=size,
                 config=ImageConfig(), diff_ids=())


class FakeRuntime:
    def __init__(self, *, node_name: str = "n1", network: NetworkPlugin | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.node_name = node_name
        self.network: NetworkPlugin = network if network is not None else FakeCni()
        self.sandboxes: dict[str, SandboxInfo] = {}
        self.containers: dict[str, ContainerInfo] = {}
        self.calls: list[tuple[object, ...]] = []
        self.fail_sandbox: RuntimeServiceError | None = None
        self.fail_create: dict[str, Exception] = {}
        self.exec_result: tuple[int, bytes, bytes] = (0, b"", b"")
        self.images: dict[str, Image] | None = None
        self.registry: dict[str, Image | Exception] = {}
        self.fs: tuple[int, int] = (100 << 30, 50 << 30)  # the image file system: capacity, available
        self.closed = False
        self._clock = clock
        self._last = 0.0
        self._sandbox_ids = (f"sb{n}" for n in itertools.count(1))
        self._container_ids = (f"c{n}" for n in itertools.count(1))

    def _now(self) -> float:
        self._last = max(self._clock(), self._last + 0.001)
        return self._last

    # ----------------------------------------------------------------- sandboxes

    async def run_pod_sandbox(self, pod_uid: str, namespace: str, name: str, *, hostname: str | None = None,
                              subdomain: str | None = None, port_mappings: Sequence[PortMapping] = (),
                              labels: Mapping[str, str] | None = None,
                              share_process_namespace: bool = False) -> SandboxInfo:
        self.calls.append(("run_pod_sandbox", pod_uid))
        if self.fail_sandbox is not None:
            raise self.fail_sandbox
        sandbox_id = next(self._sandbox_ids)
        info = SandboxInfo(id=sandbox_id, pod_uid=pod_uid, namespace=namespace, name=name, node=self.node_name,
                           netns_name=f"mc-{self.node_name}-{sandbox_id}", netns_path=f"/fake/{sandbox_id}",
                           pod_dir=f"/fake/{sandbox_id}", hostname=hostname or name, state=SANDBOX_READY,
                           created_at=self._now(), port_mappings=tuple(port_mappings), labels=dict(labels or {}))
        result = await self.network.add(self._conf(info))
        info = replace(info, ip=result.pod_ip(), cni_result=dict(result.raw), network_ready=True)
        self.sandboxes[sandbox_id] = info
        return info

    def _conf(self, info: SandboxInfo) -> RuntimeConf:
        return RuntimeConf.for_pod(container_id=info.id, netns=info.netns_path, namespace=info.namespace,
                                   name=info.name, pod_uid=info.pod_uid, port_mappings=info.port_mappings)

    async def _teardown(self, sandbox_id: str) -> None:
        info = self.sandboxes[sandbox_id]
        for c in self.list_containers(sandbox_id):
            if c.state == CONTAINER_RUNNING:
                self._exit(c.id, 137)
        if info.network_ready:
            await self.network.delete(self._conf(info), prev_result=info.cni_result)
        self.sandboxes[sandbox_id] = replace(info, state=SANDBOX_NOTREADY, network_ready=False)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_pod_sandbox", sandbox_id))
        if sandbox_id in self.sandboxes:
            await self._teardown(sandbox_id)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_pod_sandbox", sandbox_id))
        if sandbox_id not in self.sandboxes:
            return
        await self._teardown(sandbox_id)
        del self.sandboxes[sandbox_id]
        for c in self.list_containers(sandbox_id):
            del self.containers[c.id]

    def list_pod_sandboxes(self) -> list[SandboxInfo]:
        return sorted(self.sandboxes.values(), key=lambda s: s.created_at)

    async def cleanup_orphans(self, keep: set[str]) -> list[str]:
        removed = [s.id for s in self.list_pod_sandboxes() if s.pod_uid not in keep]
        for sandbox_id in removed:
            await self.remove_pod_sandbox(sandbox_id)
        return removed

    # ----------------------------------------------------------------- images

    def image_status(self, ref: str) -> Image | None:
        name = str(reference.parse(ref))
        if self.images is None:
            return fake_image(name)
        return self.images.get(name)

    async def pull_image(self, ref: str, *, keyring: Mapping[str, Credential] | None = None) -> Image:
        self.calls.append(("pull_image", ref, tuple(sorted((keyring or {}).items()))))
        await asyncio.sleep(0)
        result = self.registry.get(ref)
        if isinstance(result, Exception):
            raise result
        if result is None and self.images is None:  # every image is there, and pulls fine
            return fake_image(str(reference.parse(ref)))
        if result is None:
            raise ImagePullError(f'failed to pull and unpack image "{reference.parse(ref)}": not found')
        if self.images is not None:
            self.images[str(reference.parse(ref))] = result
        return result

    def list_images(self) -> list[Image]:
        return [] if self.images is None else list({i.id: i for i in self.images.values()}.values())

    async def remove_image(self, image_id: str) -> None:
        self.calls.append(("remove_image", image_id))
        if self.images is not None:
            self.images = {name: i for name, i in self.images.items() if i.id != image_id}

    def image_fs_info(self) -> tuple[int, int]:
        return self.fs

    # ----------------------------------------------------------------- containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        self.calls.append(("create_container", config.name, config.attempt))
        if sandbox_id not in self.sandboxes:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found")
        failure = self.fail_create.get(config.name)
        if failure is not None:
            raise failure
        container_id = next(self._container_ids)
        info = ContainerInfo(id=container_id, sandbox_id=sandbox_id, name=config.name, image=config.image,
                             attempt=config.attempt, argv=tuple(config.command or ()) + tuple(config.args or ()),
                             env=dict(config.env), working_dir=config.working_dir or "/",
                             log_path=f"/fake/{sandbox_id}/logs/{config.name}/{config.attempt}.log",
                             mounts=tuple(config.mounts),
                             state=CONTAINER_CREATED, created_at=self._now())
        self.containers[container_id] = info
        return info

    async def start_container(self, container_id: str) -> ContainerInfo:
        info = self.container_status(container_id)
        self.calls.append(("start_container", info.name, info.attempt))
        if info.state != CONTAINER_CREATED:
            raise ContainerStartError(f"container {container_id} is {info.state}, not created")
        if self.sandboxes[info.sandbox_id].state != SANDBOX_READY:
            raise ContainerStartError(f"pod sandbox {info.sandbox_id} is not ready")
        info = replace(info, state=CONTAINER_RUNNING, pid=1000 + len(self.containers), started_at=self._now())
        self.containers[container_id] = info
        return info

    async def stop_container(self, container_id: str, timeout: float = 30.0) -> ContainerInfo:
        info = self.container_status(container_id)
        self.calls.append(("stop_container", info.name, timeout))
        if info.state == CONTAINER_RUNNING:
            return self._exit(container_id, SIGTERM_EXIT)
        if info.state == CONTAINER_CREATED:
            return self._exit(container_id, None)
        return info

    async def remove_container(self, container_id: str) -> None:
        info = self.containers.get(container_id)
        self.calls.append(("remove_container", info.name if info else container_id))
        self.containers.pop(container_id, None)

    def container_io(self, container_id: str):
        return None  # no processes here, so no stdio

    def container_status(self, container_id: str) -> ContainerInfo:
        try:
            return self.containers[container_id]
        except KeyError:
            raise NotFoundError(f"container {container_id} not found") from None

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]:
        return sorted((c for c in self.containers.values() if sandbox_id is None or c.sandbox_id == sandbox_id),
                      key=lambda c: c.created_at)

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *,
                        timeout: float = 10.0) -> tuple[int, bytes, bytes]:
        self.calls.append(("exec_sync", self.container_status(container_id).name, tuple(cmd)))
        return self.exec_result

    async def exec_stream(self, container_id: str, cmd: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool,
                          tty: bool) -> ExecProcess:
        raise RuntimeServiceError("the fake runtime runs no processes")

    def close(self) -> None:
        self.closed = True

    # ----------------------------------------------------------------- what a test makes happen

    def _exit(self, container_id: str, exit_code: int | None, *, at: float | None = None) -> ContainerInfo:
        info = self.containers[container_id]
        reason = "Unknown" if exit_code is None else "Completed" if exit_code == 0 else "Error"
        info = replace(info, state=CONTAINER_EXITED, exit_code=exit_code, reason=reason,
                       finished_at=self._now() if at is None else at)
        self.containers[container_id] = info
        return info

    def exit(self, container_id: str, exit_code: int, *, at: float | None = None) -> ContainerInfo:
        """The container's process ended with `exit_code` (at `at`, default now)."""
        return self._exit(container_id, exit_code, at=at)

    def lose_sandbox(self, sandbox_id: str) -> None:
        """The sandbox's network namespace vanished (the real runtime then reports NOTREADY)."""
        self.sandboxes[sandbox_id] = replace(self.sandboxes[sandbox_id], state=SANDBOX_NOTREADY)

    def by_name(self, name: str) -> list[ContainerInfo]:
        """Every container record of that name, oldest first."""
        return [c for c in self.list_containers() if c.name == name]
