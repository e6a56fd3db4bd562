"""The node's cgroups on this machine's kernel: a removed cgroup leaves no memory charged
behind (what would keep it in the kernel as a dying cgroup), and removal goes deepest first."""
from __future__ import annotations

import contextlib
import secrets
import subprocess
from pathlib import Path

import pytest

from services.nodeagent.oci.cgroups import CGROUP_PARENT, cgroup_dirs, empty_memory, remove_cgroups

pytestmark = [pytest.mark.root]

MEMORY = Path("/sys/fs/cgroup/memory")
needs_v1_memory = pytest.mark.skipif(not (MEMORY / "memory.force_empty").exists(),
                                     reason="the cgroup v1 memory controller (this machine's layout)")


@pytest.fixture
def node_cgroup():
    path = f"/{CGROUP_PARENT}/cg-test-{secrets.token_hex(3)}"
    try:
        yield path
    finally:
        remove_cgroups(path)
        for parent in cgroup_dirs(CGROUP_PARENT):
            with contextlib.suppress(OSError):
                parent.rmdir()  # once no node of any cluster is left in it


def _charge(cgroup: Path, tmp_path: Path) -> None:
    """Run a process in `cgroup` that writes and reads 8 MiB of page cache, and let it exit."""
    big = tmp_path / "big"
    subprocess.run(["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && dd if=/dev/zero of={big} bs=1M count=8 '
                                f'2>/dev/null && cat {big} >/dev/null'], check=True)


def _usage(cgroup: Path) -> int:
    return int((cgroup / "memory.usage_in_bytes").read_text())


@needs_v1_memory
def test_empty_memory_uncharges_the_page_cache_an_ended_container_left(node_cgroup, tmp_path):
    container = f"{node_cgroup}/podx/c1"
    memory = MEMORY / container.strip("/")
    memory.mkdir(parents=True)
    _charge(memory, tmp_path)
    assert _usage(memory) >= 8 << 20  # the file's pages stay charged after the process is gone
    empty_memory(container)
    assert _usage(memory) < 1 << 20  # what is left is kernel memory, which the kernel reparents


@needs_v1_memory
def test_remove_cgroups_uncharges_and_removes_deepest_first(node_cgroup, tmp_path):
    pod = f"{node_cgroup}/pody"
    for hierarchy in cgroup_dirs(f"{pod}/c1"):
        hierarchy.mkdir(parents=True)
    memory = MEMORY / pod.strip("/")
    _charge(memory / "c1", tmp_path)
    parent_usage = _usage(memory)
    assert parent_usage >= 8 << 20  # charged hierarchically to the pod as well
    remove_cgroups(pod)
    assert not any(d.exists() for d in cgroup_dirs(pod))
    assert _usage(MEMORY / node_cgroup.strip("/")) < parent_usage - (7 << 20)  # not moved up to the node's
