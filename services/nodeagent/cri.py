"""The container runtime as the node agent uses it: kubelet's CRI RuntimeService, narrowed.

The agent's pod executor, its prober and its HTTP server talk to a runtime only through this
Protocol. `runtime.Runtime` (network namespaces and processes, needs root) satisfies it; the
in-memory `tests/fakes/runtime.py` does too, so the executor is tested without root, netns or
CNI. The records it returns (`SandboxInfo`, `ContainerInfo`) and its errors
(`RuntimeServiceError` and subclasses) live with the real runtime in `runtime.py`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from services.nodeagent.cni import PortMapping
from services.nodeagent.containerio import ContainerIO
from services.nodeagent.execproc import ExecProcess
from services.nodeagent.oci.image import Image
from services.nodeagent.oci.registry import Credential
from services.nodeagent.runtime import ContainerConfig, ContainerInfo, SandboxInfo


class ImageService(Protocol):
    """The node's images (CRI ImageService): the image manager pulls through it, the image
    garbage collector lists and removes through it."""

    def image_status(self, ref: str) -> Image | None:
        """The image `ref` names, if the node has it; raises oci.image.InvalidImageNameError."""
        ...

    async def pull_image(self, ref: str, *, keyring: Mapping[str, Credential] | None = None) -> Image:
        """Fetch it into the node's store; raises oci.image.ImageError (ImagePullError, ...)."""
        ...

    def list_images(self) -> list[Image]: ...

    async def remove_image(self, image_id: str) -> None:
        """Remove the image (every name of it) and what only it used; raises oci.image.ImageError."""
        ...

    def image_fs_info(self) -> tuple[int, int]:
        """(capacity, available) bytes of the file system the images are stored on."""
        ...


class ContainerRuntime(ImageService, Protocol):
    """Sandboxes (a pod's network) that outlive their containers (processes), as containerd's CRI."""

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
        """A new READY sandbox with its network (and, when asked, a PID namespace its containers
        share); raises RuntimeServiceError when it cannot be made."""
        ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop its containers and release its network, keep its records. Idempotent."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop if needed, then forget the sandbox and its containers. Idempotent."""
        ...

    def list_pod_sandboxes(self) -> list[SandboxInfo]: ...

    async def cleanup_orphans(self, keep: set[str]) -> list[str]:
        """Remove every sandbox whose pod uid is not in `keep`; the removed ids."""
        ...

    # ----------------------------------------------------------------- containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        """Record a container (CREATED) of an image the node has; raises oci.image.ImageError or
        RuntimeServiceError."""
        ...

    async def start_container(self, container_id: str) -> ContainerInfo: ...

    async def stop_container(self, container_id: str, timeout: float = 30.0) -> ContainerInfo: ...

    async def remove_container(self, container_id: str) -> None: ...

    def container_status(self, container_id: str) -> ContainerInfo: ...

    def container_io(self, container_id: str) -> ContainerIO | None:
        """The container's stdio (log pumps, attached clients, stdin), if this agent keeps it."""
        ...

    def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]: ...

    # ----------------------------------------------------------------- exec

    async def exec_sync(self, container_id: str, cmd: Sequence[str], *,
                        timeout: float = 10.0) -> tuple[int, bytes, bytes]: ...

    async def exec_stream(self, container_id: str, cmd: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool,
                          tty: bool) -> ExecProcess: ...

    def close(self) -> None:
        """Stop watching what runs; what runs keeps running (a restarted agent adopts it)."""
        ...
