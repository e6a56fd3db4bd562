"""What an image is to the node, and the store interface its parts share.

An `Image` is what containerd's CRI image service reports (crictl's `images`/`inspecti`): its
id is the digest of its config blob, its names are normalized references, its size the bytes of
its layers as stored. Its `ImageConfig` is the part of the OCI image config a container starts
from (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal).

`ImageStore` is the narrow interface the runtime, the puller, `minikubectl image load` and the
image garbage collector use; `store.ContentStore` is the one on disk.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class ImageError(Exception):
    """Base of the image layer's errors; `reason` is what a pod's waiting state says."""

    reason = "ErrImagePull"


class InvalidImageNameError(ImageError):
    """The reference cannot be parsed (kubelet: InvalidImageName)."""

    reason = "InvalidImageName"


class ImageNotPresentError(ImageError):
    """The image is not in the store (with imagePullPolicy Never: ErrImageNeverPull)."""


class ImagePullError(ImageError):
    """A pull failed: the registry refused, the content did not match its digest, the network
    failed. The message is the registry's or the check's, for the pod's event."""


class DigestMismatchError(ImagePullError):
    """Content whose sha256 is not the digest it was asked for: refused, never stored."""


@dataclass(frozen=True)
class ImageConfig:
    """The OCI image config's `config` section, as a container starts from it."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "KEY=value", in the image's order
    working_dir: str = ""
    user: str = ""  # "uid", "uid:gid", "name" or "name:group", resolved in the rootfs
    stop_signal: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<hex of the config blob>"
    repo_tags: tuple[str, ...]  # normalized, "docker.io/library/nginx:latest"
    repo_digests: tuple[str, ...]  # "docker.io/library/nginx@sha256:<manifest digest>"
    size: int  # bytes of its layer blobs as stored
    config: ImageConfig
    diff_ids: tuple[str, ...]  # uncompressed layer digests, bottom layer first
    os: str = "linux"
    architecture: str = "amd64"


class ImageStore(Protocol):
    """A node's images: content-addressed blobs, images named by reference, unpacked layers.

    Blobs are written through `ingest` and kept only when their sha256 is the digest asked for;
    `commit` names an image whose manifest, config and layer blobs are all present, unpacking
    its layers once (layers are shared by every image and container that uses them). Safe for
    two processes at once (the node agent and `minikubectl image load`).
    """

    root: Path

    def get(self, ref: str) -> Image | None:
        """By name (normalized first), by name@digest, by id, or by a unique id prefix."""
        ...

    def images(self) -> list[Image]: ...

    def layer_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layers, bottom first: overlayfs lowerdirs (reversed) for a rootfs."""
        ...

    def has_blob(self, digest: str) -> bool: ...

    def writer(self, digest: str) -> BlobWriter:
        """A blob being written: kept by `commit` only when its sha256 is `digest`."""
        ...

    def commit(self, name: str, manifest_digest: str, *, index_digest: str | None = None) -> Image:
        """Name an image whose manifest and all its blobs are in the store; unpack its layers."""
        ...

    def import_archive(self, path: Path) -> list[Image]:
        """Load an oci-archive, an OCI layout directory or a docker-archive (`docker save`)."""
        ...

    def remove(self, ref: str) -> None:
        """Untag or delete an image; its blobs and layers go when nothing else uses them."""
        ...

    def disk_usage(self) -> int: ...


class BlobWriter(Protocol):
    """One blob on its way into the store (a temporary file until `commit`)."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> Path:
        """Verify the sha256 (DigestMismatchError, the data dropped) and keep the blob: its path."""
        ...

    def abort(self) -> None: ...
