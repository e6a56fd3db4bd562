"""A pod's volumes on this node (kubelet's volume manager, for the kinds the node makes).

Each volume becomes a directory (or, for hostPath, a path) the runtime bind-mounts into the
containers that mount it; containers run in their own mount namespace (`runtime.py`), so the
mounts are theirs alone and vanish with them. Under `<root>/<pod uid>/volumes/<plugin>/<name>`:
- `emptyDir`: a directory, mode 0777; with `medium: Memory` a tmpfs mounted there (sized by
  `sizeLimit` when given), unmounted when the pod goes;
- `configMap`, `secret`, `downwardAPI`, `projected`: files written by the atomic writer
  (`projected.write_atomic`: a timestamped directory, the `..data` link swapped in one rename),
  rewritten in place when what they show changes. The pod is synced again every
  VOLUME_RESYNC_SECONDS and on every change of the pod itself, and the objects are read through
  `sources.ReferencedObjects` (one GET per object per TTL), so a ConfigMap, Secret or label
  change reaches the files of a running container within about a minute, as with kubelet;
- `hostPath`: the node's own path, checked (or made) as its `type` says, with kubelet's messages
  (PodSecurity admission has already decided whether the pod may use it).
A failing volume raises `VolumeError` naming it; the containers of the pod then wait.
Directories of pods no longer bound here are removed (after unmounting what is mounted in
them), on every sync of a gone pod and when the agent starts, so a crash leaves nothing behind.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubecore.api import quantity
from services.nodeagent import procfs, volumefiles
from services.nodeagent.oci.mounts import unmount_under
from services.nodeagent.projected import TokenManager, VolumeError, write_atomic
from services.nodeagent.sources import ReferencedObjects, SourceError
from services.nodeagent.volumefiles import NodeVolume, VolumeInputs

log = logging.getLogger("nodeagent")
_MOUNT = shutil.which("mount") or "/bin/mount"


class FailedVolume(VolumeError):
    """A volume that could not be set up: kubelet's `MountVolume.SetUp failed for volume "x" : ...`."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume


# --------------------------------------------------------------------------- hostPath


def _file_kind(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    for kind, test in (("Directory", stat.S_ISDIR), ("File", stat.S_ISREG), ("Socket", stat.S_ISSOCK),
                       ("CharDevice", stat.S_ISCHR), ("BlockDevice", stat.S_ISBLK)):
        if test(mode):
            return kind
    return "Other"


_NOT_A = {"Directory": "a directory", "File": "a file", "Socket": "a socket file",
          "CharDevice": "a character device", "BlockDevice": "a block device"}


def check_host_path(path: str, path_type: str) -> None:
    """host_path.go's checkType: make what `...OrCreate` asks for, else the path must be the kind
    the type names; an empty type checks nothing (a missing path is then made a directory, as
    containerd's CRI does when it mounts it)."""
    if not path_type:
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if path_type not in ("DirectoryOrCreate", "FileOrCreate", *_NOT_A):
        raise VolumeError(f"{path_type} is an invalid volume type")
    exists, op = os.path.lexists(path), ""
    try:
        if path_type == "DirectoryOrCreate" and not exists:
            op = "mkdir"
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        if path_type == "FileOrCreate" and not exists:
            op = "open"
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            return
    except OSError as exc:  # in Go's words: "open /x/y: no such file or directory"
        raise VolumeError(f"{op} {path}: {os.strerror(exc.errno or 0).lower()}") from exc
    wanted = path_type.removesuffix("OrCreate")
    if _file_kind(path) != wanted:
        raise VolumeError(f"hostPath type check failed: {path} is not {_NOT_A[wanted]}")


# --------------------------------------------------------------------------- emptyDir


def _tmpfs_options(source: Mapping[str, Any]) -> str:
    options = "mode=0777"
    if source.get("sizeLimit") not in (None, ""):
        try:
            options += f",size={quantity.value(quantity.parse(source['sizeLimit']))}"
        except quantity.QuantityError as exc:
            raise VolumeError(f"sizeLimit: {exc}") from exc
    return options


async def _set_up_empty_dir(target: Path, source: Mapping[str, Any]) -> None:
    await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    if source.get("medium") == "Memory":
        if not await asyncio.to_thread(os.path.ismount, target):
            try:
                await procfs.run(_MOUNT, "-t", "tmpfs", "-o", _tmpfs_options(source), "tmpfs", str(target))
            except procfs.CommandError as exc:
                raise VolumeError(f"mounting a tmpfs for the Memory medium: {exc}") from exc
    os.chmod(target, 0o777)


def remove_pod_dir(path: Path) -> None:
    """Unmount what is mounted below a pod's directory, then remove it."""
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- a pod's volumes


class PodVolumes:
    """Sets up a pod's volumes on this node; the executor's `VolumeSetUp`."""

    def __init__(self, objects: ReferencedObjects, root: Path, *, tokens: TokenManager,
                 allocatable: Mapping[str, str] | None = None) -> None:
        self.objects = objects
        self.root = root
        self.tokens = tokens
        self.allocatable = dict(allocatable or {})

    def volume_dir(self, pod_uid: str, volume: NodeVolume) -> Path:
        return self.root / pod_uid / "volumes" / volumefiles.PLUGIN_DIRS[volume.kind] / volume.name

    async def set_up(self, pod: Mapping[str, Any]) -> dict[str, str]:
        """Make every volume of the pod the node makes; -> volume name -> host path."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        out = {}
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for volume in volumefiles.node_volumes(pod):
            try:
                out[volume.name] = await self._set_up(pod, uid, volume)
            except (VolumeError, SourceError, OSError) as exc:
                raise FailedVolume(volume.name, str(exc)) from exc
        return out

    async def _set_up(self, pod: Mapping[str, Any], uid: str, volume: NodeVolume) -> str:
        if volume.kind == volumefiles.HOST_PATH:
            path = str(volume.source.get("path") or "")
            await asyncio.to_thread(check_host_path, path, str(volume.source.get("type") or ""))
            return path
        target = self.volume_dir(uid, volume)
        if volume.kind == volumefiles.EMPTY_DIR:
            await _set_up_empty_dir(target, volume.source)
            return str(target)
        files = volumefiles.volume_files(pod, volume, await self._inputs(pod, volume))
        if await asyncio.to_thread(write_atomic, target, files):
            meta = pod.get("metadata") or {}
            log.info("pod=%s/%s volume %s written", meta.get("namespace"), meta.get("name"), volume.name)
        return str(target)

    async def _inputs(self, pod: Mapping[str, Any], volume: NodeVolume) -> VolumeInputs:
        refs = volumefiles.references(volume)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        return VolumeInputs(
            tokens={ts: await self.tokens.token(pod, ts) for ts in refs.tokens},
            configmaps={n: await self.objects.configmap(namespace, n) for n in sorted(refs.configmaps)},
            secrets={n: await self.objects.secret(namespace, n) for n in sorted(refs.secrets)},
            allocatable=self.allocatable)

    def keep_pods(self, uids: set[str]) -> None:
        """Remove the volumes of pods not in `uids` (gone from this node)."""
        self.tokens.forget_pods(uids)
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name not in uids:
                remove_pod_dir(entry)
