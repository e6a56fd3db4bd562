"""The default images built from this machine's packages: valid OCI archives by skopeo's reading,
reproducible, cached, and runnable (each one's main program, in a chroot of its unpacked layers)."""
from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import nodeimages
from services.nodeagent.oci.mounts import mount_overlay, unmount
from services.nodeagent.oci.store import ContentStore

pytestmark = pytest.mark.root  # chroot


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, nodeimages.Built]:
    cache = tmp_path_factory.mktemp("cache")
    return {b.name: b for b in nodeimages.build_all(cache)}


def test_reproducible_and_cached(built: dict[str, nodeimages.Built], tmp_path: Path):
    again = nodeimages.build("busybox", tmp_path)
    assert not again.cached and again.manifest == built["busybox"].manifest
    assert nodeimages.build("busybox", tmp_path).cached


@pytest.mark.parametrize("name", ["busybox", "nginx", "python", "agnhost", "netshoot"])
def test_skopeo_reads_every_archive(built: dict[str, nodeimages.Built], name: str):
    recipe = nodeimages.recipes()[name]
    tag = recipe.names[0].rsplit(":", 1)[1]
    out = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{built[name].archive}:{tag}"],
                         capture_output=True, text=True, check=True).stdout
    config = json.loads(out)
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    assert len(config["rootfs"]["diff_ids"]) == len(recipe.layers)


@contextlib.contextmanager
def _rootfs(store: ContentStore, ref: str, tmp: Path) -> Iterator[Path]:
    """The image's layers under an overlay, as a container's rootfs."""
    image = store.get(ref)
    assert image is not None
    target, upper, work = tmp / "rootfs", tmp / "upper", tmp / "work"
    for d in (target, upper, work):
        d.mkdir()
    mount_overlay(target, lowers=store.layer_dirs(image), upper=upper, work=work)
    try:
        yield target
    finally:
        unmount(target)


@pytest.mark.parametrize(("ref", "argv", "expected"), [
    ("busybox", ["sh", "-c", "echo ok; id -un"], "ok\nroot\n"),
    ("nginx", ["nginx", "-t"], "test is successful"),
    ("python:3.11", ["python3", "-c", "import json, http.server, ssl, sqlite3; print('imports ok')"], "imports ok"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", ["/agnhost", "netexec", "--help"], "--http-port"),
    ("nicolaka/netshoot", ["sh", "-c", "curl --version && dig -v"], "curl"),
], ids=["busybox", "nginx", "python", "agnhost", "netshoot"])
def test_runs_in_a_chroot(built: dict[str, nodeimages.Built], tmp_path: Path, ref: str, argv: list[str],
                          expected: str):
    store = ContentStore(tmp_path / "store")
    for b in built.values():
        store.import_archive(b.archive)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": "/app"}
    with _rootfs(store, ref, tmp_path) as root:
        result = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, env=env, timeout=60,
                                check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_the_busybox_layer_is_shared(built: dict[str, nodeimages.Built], tmp_path: Path):
    store = ContentStore(tmp_path)
    images = [store.import_archive(b.archive)[-1] for b in built.values()]
    assert len({image.diff_ids[0] for image in images}) == 1
