"""A small image catalog: well-known image names mapped to local commands.

Nothing can be pulled here, so an "image" is what its config would give a real runtime: an
entrypoint, a default command, environment. The container's argv then follows Kubernetes'
rules for `command` and `args` (they replace the image's ENTRYPOINT and CMD):

- neither given: ENTRYPOINT + CMD
- only `args`: ENTRYPOINT + args
- `command` given: command + args (the image's CMD is dropped)

An image the catalog does not know still runs when the pod spells out `command`: it is taken
as the host's command. Without a command there is nothing to run, which is ErrImagePull.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The repository root, so catalog workloads run as `python -m services.nodeagent.workloads.X`
# whatever the container's workingDir.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_PYTHON = sys.executable
_WORKLOADS = "services.nodeagent.workloads"


class ImagePullError(Exception):
    """The image is unknown and the container gives no command; the caller reports ErrImagePull."""

    reason = "ErrImagePull"

    def __init__(self, image: str, message: str) -> None:
        super().__init__(message)
        self.image = image


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config the runtime uses."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""


@dataclass(frozen=True)
class ResolvedProcess:
    """What to execute for one container."""

    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str


def _workload(module: str) -> ImageConfig:
    return ImageConfig(entrypoint=(_PYTHON, "-m", f"{_WORKLOADS}.{module}"), env={"PYTHONPATH": _REPO_ROOT})


# Keys are repository paths with the default registry and `library/` stripped.
CATALOG: dict[str, ImageConfig] = {
    "nginx": ImageConfig(cmd=(_PYTHON, "-m", f"{_WORKLOADS}.nginx"), env={"PYTHONPATH": _REPO_ROOT}),
    "registry.k8s.io/e2e-test-images/agnhost": _workload("agnhost"),
    "k8s.gcr.io/e2e-test-images/agnhost": _workload("agnhost"),
    "busybox": ImageConfig(cmd=("sh",)),
    "alpine": ImageConfig(cmd=("/bin/sh",)),
    "python": ImageConfig(cmd=(_PYTHON,)),
}

_DEFAULT_REGISTRIES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def repository(image: str) -> str:
    """`docker.io/library/nginx:1.25@sha256:..` -> `nginx`; registry hosts other than Docker Hub stay."""
    ref = image.strip().split("@", 1)[0]
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:  # a tag, not a registry port
        ref = ref[:colon]
    for registry in _DEFAULT_REGISTRIES:
        if ref.startswith(registry):
            ref = ref[len(registry):]
            break
    if ref.startswith("library/"):
        ref = ref[len("library/"):]
    return ref.lower()


def lookup(image: str) -> ImageConfig | None:
    return CATALOG.get(repository(image))


def resolve(
    image: str,
    *,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    working_dir: str | None = None,
) -> ResolvedProcess:
    """The process a container runs. Raises ImagePullError for an unknown image without command."""
    if not image:
        raise ImagePullError(image, "container has no image")
    config = lookup(image)
    if config is None:
        if not command:
            raise ImagePullError(
                image,
                f'Failed to pull image "{image}": image is not in the node\'s local catalog '
                f"(known: {', '.join(sorted(CATALOG))}) and no command was given",
            )
        config = ImageConfig()
    if command:
        argv = [*command, *(args or ())]
    elif args is not None and len(args) > 0:
        argv = [*config.entrypoint, *args]
    else:
        argv = [*config.entrypoint, *config.cmd]
    if not argv:
        raise ImagePullError(image, f'image "{image}" has no entrypoint or command and the container gives none')
    merged_env = {**config.env, **(env or {})}
    if "PYTHONPATH" in config.env and env and "PYTHONPATH" in env:
        merged_env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], config.env["PYTHONPATH"]])
    return ResolvedProcess(image=image, argv=tuple(argv), env=merged_env,
                           working_dir=working_dir or config.working_dir or "/")
