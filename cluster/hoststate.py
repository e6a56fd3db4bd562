"""What the nodes' container runtime leaves on the machine besides processes and namespaces:
mounts (containers' root filesystems, pods' IPC/UTS namespaces and /dev/shm) under the node
directories, and cgroups under `/minicluster/<node>`. `cluster down` removes them, also after
a crash (a node agent killed with SIGKILL leaves them all behind); both steps are idempotent.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from services.nodeagent.oci.cgroups import CGROUP_PARENT, CGROUP_ROOT, cgroup_dirs, remove_tree
from services.nodeagent.oci.mounts import mounts_under, unmount_under

__all__ = ["mounts_under", "unmount_under", "remove_cgroups", "cgroup_dirs"]

def remove_cgroups(nodes: Iterable[str], *, root: Path = CGROUP_ROOT, wait: float = 5.0) -> list[str]:
    """Remove the nodes' cgroup trees, deepest first. A cgroup still holding processes (dying
    ones) is retried for up to `wait` seconds."""
    removed: list[str] = []
    for node in nodes:
        for top in cgroup_dirs(f"{CGROUP_PARENT}/{node}", root):
            if not top.is_dir():
                continue
            deadline = time.monotonic() + wait
            while top.is_dir():
                remove_tree(top)  # what stays (dying processes) is retried below
                if not top.is_dir() or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if not top.is_dir():
                removed.append(f"cgroup {top}")
    for parent in cgroup_dirs(CGROUP_PARENT, root):
        try:
            os.rmdir(parent)  # only once no node of any cluster is left in it
        except OSError:
            pass
    return removed
