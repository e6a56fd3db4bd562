"""A pod's namespaces made in-process (`netns.new_namespaces`): what `ip netns add`, `ip link set
lo up` and `unshare --ipc= --uts= hostname` made, seen with util-linux's nsenter; the agent's own
namespaces untouched; nothing left when it fails."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.nodeagent import netns
from services.nodeagent.oci import mounts
from tests.nodeagent.conftest import needs_netns

pytestmark = [needs_netns, pytest.mark.root]


def _in(path: Path, kind: str, *argv: str) -> str:
    return subprocess.run(["nsenter", f"--{kind}={path}", "--", *argv], check=True, capture_output=True,
                          text=True).stdout


def test_new_namespaces_are_kept_by_their_files(tmp_path: Path):
    net, ipc, uts = tmp_path / "net", tmp_path / "ipc", tmp_path / "uts"
    mine = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "ipc", "uts")}
    try:
        netns.new_namespaces({netns.CLONE_NEWNET: net, netns.CLONE_NEWIPC: ipc, netns.CLONE_NEWUTS: uts},
                             hostname="pod-a")
        assert "<LOOPBACK,UP," in _in(net, "net", "ip", "-o", "link", "show", "lo")
        assert len(_in(net, "net", "ip", "-o", "link").splitlines()) == 1  # only lo: a new namespace
        assert _in(uts, "uts", "hostname").strip() == "pod-a"
        assert _in(ipc, "ipc", "readlink", "/proc/self/ns/ipc").strip() != mine["ipc"]
        assert {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in mine} == mine  # the agent stays
        assert os.uname().nodename != "pod-a"
    finally:
        for path in (net, ipc, uts):
            mounts.unmount(path)
            path.unlink(missing_ok=True)


def test_a_failure_leaves_nothing(tmp_path: Path):
    taken = tmp_path / "uts"
    taken.write_text("")
    with pytest.raises(FileExistsError):
        netns.new_namespaces({netns.CLONE_NEWIPC: tmp_path / "ipc", netns.CLONE_NEWUTS: taken}, hostname="x")
    assert not (tmp_path / "ipc").exists()
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
