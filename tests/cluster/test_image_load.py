"""`minikubectl image load`: archives onto every node's store of a local cluster (kind load)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import nodeimages
from cluster.config import ClusterConfig
from services.nodeagent.oci.store import ContentStore

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.root  # layers keep their owners and device nodes


def minikubectl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minikubectl", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False)


def test_load_onto_every_node(tmp_path: Path):
    cfg = ClusterConfig(name="lt", nodes=2, state_dir=tmp_path / "state")
    cfg.state_dir.mkdir()
    (cfg.state_dir / "cluster.json").write_text(json.dumps({"config": cfg.to_json()}))
    archive = nodeimages.build("busybox").archive
    first = minikubectl("image", "load", str(archive), "--state-dir", str(cfg.state_dir))
    assert first.returncode == 0, first.stderr
    image_id = ContentStore(cfg.node_dir(1) / "images").images()[0].id
    assert first.stdout.splitlines() == [
        f'Image: "docker.io/library/busybox:1.35" with ID "{image_id}" loaded onto node "lt-node-{i}"'
        for i in (1, 2)]
    for i in (1, 2):
        assert ContentStore(cfg.node_dir(i) / "images").get("busybox:latest") is not None
    again = minikubectl("image", "load", str(archive), "--state-dir", str(cfg.state_dir))
    assert "already present on node \"lt-node-2\"" in again.stdout


@pytest.mark.parametrize(("setup", "message"), [
    ("no-cluster", "no cluster in"),
    ("missing-file", "no such file or directory"),
    ("not-an-archive", "not an image archive"),
])
def test_errors_are_one_line(tmp_path: Path, setup: str, message: str):
    cfg = ClusterConfig(name="lt", nodes=1, state_dir=tmp_path / "state")
    if setup != "no-cluster":
        cfg.state_dir.mkdir()
        (cfg.state_dir / "cluster.json").write_text(json.dumps({"config": cfg.to_json()}))
    archive = tmp_path / "file.tar"
    if setup == "not-an-archive":
        archive.write_text("hello")
    res = minikubectl("image", "load", str(archive), "--state-dir", str(cfg.state_dir))
    assert res.returncode == 1 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and message in res.stderr, res.stderr
