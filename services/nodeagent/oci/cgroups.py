"""The node's cgroups: where the agent's pods and containers live (`/minicluster/<node>/pod<uid>/
<container>`, in every v1 hierarchy or the one v2 tree), what the kernel says of them, and their
removal, shared by the runtime and `cluster down`."""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "minicluster"


def cgroup_parent(node: str, pod_uid: str) -> str:
    return f"/{CGROUP_PARENT}/{node}/pod{pod_uid}"


def cgroup_dirs(path: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Where a cgroups path lives: in every v1 hierarchy, or the one v2 tree."""
    relative = path.strip("/")
    if (root / "cgroup.controllers").exists():
        return [root / relative]
    if not root.is_dir():
        return []
    return [h / relative for h in sorted(root.iterdir()) if h.is_dir() and not h.is_symlink()]


def _force_empty(directory: Path) -> None:
    """v1's `memory.force_empty`: uncharge the page cache the cgroup's processes read or wrote.
    Without it a removed memory cgroup stays in the kernel, dying, for as long as one such page
    is cached: two per pod (the pod's and its container's), 200 more after each 100-pod benchmark
    run here. (v2 has no force_empty; this machine has no v2 to try its memory.reclaim on.)"""
    with contextlib.suppress(OSError):  # not the memory hierarchy, gone, or processes still in it
        fd = os.open(directory / "memory.force_empty", os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def empty_memory(path: str, root: Path = CGROUP_ROOT) -> None:
    """`_force_empty` of an ended cgroup in every hierarchy that has it (before an OCI runtime
    removes the cgroup itself)."""
    for directory in cgroup_dirs(path, root):
        _force_empty(directory)


def rmdir_cgroup(directory: str | Path) -> None:
    """Remove one cgroup, its memory uncharged first; OSError while it has children or processes."""
    _force_empty(Path(directory))
    os.rmdir(directory)


def remove_tree(top: Path) -> dict[str, OSError]:
    """One pass over the cgroup `top` and its children, deepest first, each uncharged and
    removed (`rmdir_cgroup`); -> the ones that stayed, with why (children, processes)."""
    stayed = {}
    for current, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        try:
            rmdir_cgroup(current)
        except OSError as exc:
            stayed[current] = exc
    return stayed


def remove_cgroups(path: str, root: Path = CGROUP_ROOT) -> None:
    """Remove a cgroup and its empty children, deepest first, in every hierarchy."""
    for top in cgroup_dirs(path, root):
        if not top.is_dir():
            continue
        for current, exc in remove_tree(top).items():
            log.warning("cgroup %s not removed: %s", current, exc)


def oom_kills(path: str, root: Path = CGROUP_ROOT) -> int:
    """How many times the kernel's OOM killer ended a process of the cgroup (v1: memory.oom_control,
    v2: memory.events)."""
    for directory in cgroup_dirs(path, root):
        for name in ("memory.oom_control", "memory.events"):
            try:
                text = (directory / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
    return 0
