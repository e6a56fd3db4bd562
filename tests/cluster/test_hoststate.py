"""Finding what the nodes' runtime left mounted, and the cgroup trees to remove: on real files."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster import hoststate

MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/vda rw
601 22 0:70 / /var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/ns/shm rw - tmpfs tmpfs rw
602 22 0:4 uts:[4026532178] /var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/ns/uts rw - nsfs nsfs rw
603 22 0:71 / /var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/containers/c1/bundle/rootfs rw - overlay
604 22 0:72 / /var/lib/minicluster/nodes/with\\040space rw - tmpfs tmpfs rw
606 22 0:74 / /var/lib/minicluster/nodes rw - tmpfs tmpfs rw
605 22 0:73 / /var/lib/minicluster/nodesother rw - tmpfs tmpfs rw
"""


def test_mounts_under_deepest_first_and_only_inside():
    points = hoststate.mounts_under(Path("/var/lib/minicluster/nodes"), MOUNTINFO)
    assert points == [
        "/var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/containers/c1/bundle/rootfs",
        "/var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/ns/uts",
        "/var/lib/minicluster/nodes/mc-node-1/runtime/sandboxes/ab/ns/shm",
        "/var/lib/minicluster/nodes/with space",
        "/var/lib/minicluster/nodes",
    ]


@pytest.mark.parametrize("v2", [False, True], ids=["v1-hierarchies", "v2-tree"])
def test_remove_cgroups_deepest_first(tmp_path: Path, v2: bool):
    """On a directory tree shaped like /sys/fs/cgroup (plain directories here: rmdir works alike)."""
    if v2:
        (tmp_path / "cgroup.controllers").write_text("")
        hierarchies = [tmp_path]
    else:
        hierarchies = [tmp_path / "memory", tmp_path / "pids"]
    for h in hierarchies:
        (h / "minicluster/mc-node-1/poduid/c1").mkdir(parents=True)
        (h / "minicluster/mc-node-2/poduid").mkdir(parents=True)
        (h / "minicluster/other-node").mkdir(parents=True)
    removed = hoststate.remove_cgroups(["mc-node-1", "mc-node-2"], root=tmp_path, wait=0)
    assert len(removed) == 2 * len(hierarchies)
    for h in hierarchies:
        assert not (h / "minicluster/mc-node-1").exists()
        assert (h / "minicluster/other-node").is_dir()  # another cluster's node keeps its cgroup
    assert hoststate.remove_cgroups(["mc-node-1"], root=tmp_path, wait=0) == []
