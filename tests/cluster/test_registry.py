"""The cluster's registry (cluster/registry.py): its seed of default images, the per-cluster copy,
a push from a node's store, and `image load` pushing into it; real docker-registry on loopback,
pulls by the node agent's puller."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import nodeimages, registry
from cluster.config import ClusterConfig
from cluster.procs import free_port
from services.nodeagent.oci.registry import Puller
from services.nodeagent.oci.store import ContentStore

ROOT = Path(__file__).resolve().parent.parent.parent
needs_registry = pytest.mark.skipif(shutil.which("docker-registry") is None or shutil.which("skopeo") is None,
                                    reason="needs Debian's docker-registry and skopeo")


@pytest.mark.parametrize("name, path", [
    ("docker.io/library/nginx:1.22", "library/nginx:1.22"),
    ("docker.io/nicolaka/netshoot:latest", "nicolaka/netshoot:latest"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", "e2e-test-images/agnhost:2.39"),
])
def test_repository_path_is_the_name_without_its_registry(name, path):
    assert registry.repository_path(name) == path


def test_a_registry_not_mirrored_has_no_path():
    with pytest.raises(registry.RegistryError, match="only images of docker.io, registry.k8s.io"):
        registry.repository_path("quay.io/team/app:1")


def test_mirror_flags_and_config():
    assert registry.mirror_flags("http://10.250.0.1:5000") == [
        "--registry-mirror", "docker.io=http://10.250.0.1:5000",
        "--registry-mirror", "registry.k8s.io=http://10.250.0.1:5000"]
    text = registry.config_text(Path("/s/storage"), "10.250.0.1:5000")
    assert "rootdirectory: /s/storage" in text and "addr: 10.250.0.1:5000" in text


def test_seed_key_depends_on_the_images_not_their_order():
    a = (Path("a.tar"), ("docker.io/library/a:1",), "sha256:1")
    b = (Path("b.tar"), ("docker.io/library/b:1",), "sha256:2")
    assert registry.seed_key([a, b]) == registry.seed_key([b, a]) != registry.seed_key([a])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nodeimages.Built]:
    built = nodeimages.build("busybox")
    cache = tmp_path_factory.mktemp("seed")
    return registry.seed(nodeimages.for_registry([built]), cache), built


def _pull(url: str, ref: str, store_dir: Path):
    return asyncio.run(Puller(ContentStore(store_dir), mirrors={"docker.io": [url]}).pull(ref))


@pytest.mark.root  # layers keep their owners and device nodes
@needs_registry
def test_the_seed_serves_the_default_images_and_a_copy_protects_it(seeded, tmp_path: Path):
    storage, built = seeded
    assert registry.seed(nodeimages.for_registry([built]), storage.parent.parent) == storage  # made once
    directory = tmp_path / "cluster-registry"
    registry.install(storage, directory / "storage")
    blobs = [p for p in (directory / "storage").rglob("data") if "blobs" in p.parts]
    links = [p for p in (directory / "storage").rglob("link")]
    assert blobs and links
    assert all(p.stat().st_nlink >= 2 for p in blobs)  # shared with the seed, not copied
    assert all(p.stat().st_nlink == 1 for p in links)  # copied: a tag pushed again rewrites its link in place
    seed_tag = storage / "docker/registry/v2/repositories/library/busybox/_manifests/tags/latest/current/link"
    before = seed_tag.read_text()
    with registry.serving(directory, f"127.0.0.1:{free_port()}") as url:
        image = _pull(url, "busybox:1.35", tmp_path / "node")
        assert image.repo_digests == (f"docker.io/library/busybox@{built.manifest}",)
        # another image under the same tag, pushed into the copy: the seed keeps its own
        app = nodeimages.build("netshoot")
        registry.push(f"oci-archive:{app.archive}:latest", url, "library/busybox:latest")
        assert _pull(url, "busybox:latest", tmp_path / "node2").repo_digests[0].endswith(app.manifest)
    assert seed_tag.read_text() == before


@pytest.mark.root
@needs_registry
def test_push_from_a_store_whatever_the_archive_format(tmp_path: Path):
    busybox = nodeimages.build("busybox")
    docker_archive = tmp_path / "app.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci-archive:{busybox.archive}:latest",
                    f"docker-archive:{docker_archive}:team/app:v2"], check=True, capture_output=True)
    store = ContentStore(tmp_path / "store")
    (image,) = store.import_archive(docker_archive)
    with registry.serving(tmp_path / "registry", f"127.0.0.1:{free_port()}") as url:
        assert registry.push_from_store(store, image, url) == ["docker.io/team/app:v2"]
        pulled = _pull(url, "team/app:v2", tmp_path / "node")
    assert pulled.id == image.id and pulled.diff_ids == image.diff_ids


@pytest.mark.root
@needs_registry
def test_image_load_pushes_into_the_clusters_registry(tmp_path: Path):
    # a cluster whose gateway is loopback, so its registry serves here
    cfg = ClusterConfig(name="rt", nodes=1, state_dir=tmp_path / "state", node_cidr="127.0.0.0/24",
                        registry_port=free_port())
    cfg.state_dir.mkdir()
    (cfg.state_dir / "cluster.json").write_text(json.dumps({"config": cfg.to_json()}))
    archive = nodeimages.build("netshoot").archive
    with registry.serving(cfg.registry_dir, f"127.0.0.1:{cfg.registry_port}") as url:
        assert url == cfg.registry_url
        loaded = subprocess.run([sys.executable, "-m", "minikubectl", "image", "load", str(archive),
                                 "--state-dir", str(cfg.state_dir)], capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "MINICLUSTER_STATE_DIR": str(cfg.state_dir)})
        assert loaded.returncode == 0, loaded.stderr
        assert f'Image: "docker.io/nicolaka/netshoot:latest" pushed to the cluster registry {url}' in loaded.stdout
        assert _pull(url, "nicolaka/netshoot", tmp_path / "node").repo_tags == ("docker.io/nicolaka/netshoot:latest",)
