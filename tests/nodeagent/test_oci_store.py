"""The node's image store on real archives: the default images, the same converted by skopeo to a
docker-archive and an OCI layout, layers unpacked with whiteouts an overlay mount honours, and
content that does not match its digest refused."""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from cluster import nodeimages
from services.nodeagent.oci import layers
from services.nodeagent.oci.image import DigestMismatchError, ImageNotPresentError
from services.nodeagent.oci.mounts import mount_overlay, unmount
from services.nodeagent.oci.store import ArchiveError, ContentStore

pytestmark = pytest.mark.root  # layers keep owners, device nodes and trusted.* xattrs

BUSYBOX = "docker.io/library/busybox:latest"


@pytest.fixture(scope="module")
def archives() -> dict[str, Path]:
    return {b.name: b.archive for b in nodeimages.build_all(names=["busybox", "nginx"])}


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _link(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    return info, None


def test_default_images_load_and_share_their_base_layer(tmp_path: Path, archives: dict[str, Path]):
    store = ContentStore(tmp_path / "store")
    busybox = store.import_archive(archives["busybox"])[-1]
    nginx = store.import_archive(archives["nginx"])[-1]
    assert set(busybox.repo_tags) == {"docker.io/library/busybox:1.35", BUSYBOX}
    assert nginx.diff_ids[0] == busybox.diff_ids[0]
    assert store.layer_dirs(nginx)[0] == store.layer_dirs(busybox)[0]
    assert len(list((tmp_path / "store/layers").iterdir())) == 2
    assert nginx.config.stop_signal == "SIGQUIT" and nginx.config.cmd == ("nginx", "-g", "daemon off;")
    for ref in ("busybox", "busybox:1.35", busybox.id, busybox.id[7:19], busybox.repo_digests[0]):
        found = store.get(ref)
        assert found is not None and found.id == busybox.id, ref
    assert store.get("busybox:9") is None and store.get("nope") is None


@pytest.mark.parametrize("transport", ["docker-archive", "oci"], ids=["docker-save-format", "oci-layout-dir"])
def test_archives_skopeo_writes_load_the_same_image(tmp_path: Path, archives: dict[str, Path], transport: str):
    """skopeo converts the archive; the store gets the same image (same config, same layers)."""
    target = tmp_path / ("busybox.tar" if transport == "docker-archive" else "layout")
    dest = f"docker-archive:{target}:docker.io/library/busybox:copied" if transport == "docker-archive" \
        else f"oci:{target}:docker.io/library/busybox:copied"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci-archive:{archives['busybox']}:latest",
                    dest], check=True, capture_output=True)
    original = ContentStore(tmp_path / "a").import_archive(archives["busybox"])[-1]
    [copied] = ContentStore(tmp_path / "b").import_archive(target)
    assert copied.repo_tags == ("docker.io/library/busybox:copied",)
    assert copied.diff_ids == original.diff_ids and copied.config == original.config


def test_a_blob_that_is_not_its_digest_is_refused(tmp_path: Path):
    store = ContentStore(tmp_path)
    claimed = "sha256:" + hashlib.sha256(b"the real content").hexdigest()
    writer = store.writer(claimed)
    writer.write(b"tampered content")
    with pytest.raises(DigestMismatchError):
        writer.commit()
    assert not store.has_blob(claimed) and not list((tmp_path / "ingest").iterdir())


def test_a_layer_whose_diff_id_differs_is_refused(tmp_path: Path):
    blob = _tar([_file("etc/motd", b"hello\n")])
    with pytest.raises(DigestMismatchError):
        layers.unpack(io.BytesIO(blob), tmp_path / "layer", diff_id="sha256:" + "0" * 64)
    assert not (tmp_path / "layer").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entries", [
    [_file("../escape", b"x")],
    [_file("a/../../escape", b"x")],
    [_link("out", "/tmp"), _file("out/escape", b"x")],
    [_link("hard", "../../etc/passwd", hard=True)],
], ids=["dotdot", "nested-dotdot", "through-symlink", "hardlink-outside"])
def test_unsafe_entries_are_refused(tmp_path: Path, entries):
    with pytest.raises(layers.LayerError):
        layers.unpack(io.BytesIO(_tar(entries)), tmp_path / "layer")
    assert not (tmp_path / "layer").exists()


def test_whiteouts_hide_lower_content_in_an_overlay(tmp_path: Path):
    lower = _tar([_dir("etc"), _file("etc/keep", b"keep"), _file("etc/gone", b"gone"), _dir("data"),
                  _file("data/old", b"old"), _file("bin/tool", b"#!/bin/sh\n", 0o755), _link("bin/alias", "tool")])
    upper = _tar([_dir("etc"), _file("etc/.wh.gone", b""), _dir("data"), _file("data/.wh..wh..opq", b""),
                  _file("data/new", b"new"), _link("data/hard", "data/new", hard=True)])
    first = layers.unpack(io.BytesIO(lower), tmp_path / "l1")
    layers.unpack(io.BytesIO(gzip_bytes(upper)), tmp_path / "l2")
    assert first == "sha256:" + hashlib.sha256(lower).hexdigest()
    assert os.stat(tmp_path / "l2/etc/gone").st_rdev == os.makedev(0, 0)
    assert os.getxattr(tmp_path / "l2/data", "trusted.overlay.opaque") == b"y"
    merged, work, up = tmp_path / "merged", tmp_path / "work", tmp_path / "upper"
    for d in (merged, work, up):
        d.mkdir()
    mount_overlay(merged, lowers=[tmp_path / "l1", tmp_path / "l2"], upper=up, work=work)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "data")) == ["hard", "new"]
        assert (merged / "data/hard").read_bytes() == b"new"
        assert os.readlink(merged / "bin/alias") == "tool"
        assert (merged / "bin/tool").stat().st_mode & 0o777 == 0o755
    finally:
        unmount(merged)


def gzip_bytes(data: bytes) -> bytes:
    import gzip
    return gzip.compress(data, mtime=0)


def test_remove_and_collect(tmp_path: Path, archives: dict[str, Path]):
    store = ContentStore(tmp_path)
    store.import_archive(archives["busybox"])
    nginx = store.import_archive(archives["nginx"])[-1]
    store.remove("nginx:latest")
    assert store.get("nginx:latest") is None and store.get("nginx:1.22") is not None  # untagged one name
    store.remove(nginx.id)
    assert store.get("nginx:1.22") is None
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [store.layer_dir(nginx.diff_ids[0]).name]
    busybox = store.get(BUSYBOX)
    assert busybox is not None and all(p.is_dir() for p in store.layer_dirs(busybox))
    with pytest.raises(ImageNotPresentError):
        store.remove("nginx:latest")


def test_not_an_image_archive(tmp_path: Path):
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match="neither an OCI image layout"):
        ContentStore(tmp_path / "s").import_archive(path)
    (tmp_path / "junk").write_bytes(b"not a tar")
    with pytest.raises(ArchiveError, match="not an image archive"):
        ContentStore(tmp_path / "s").import_archive(tmp_path / "junk")


def _import(root: str, archive: str) -> list[str]:
    return [i.id for i in ContentStore(Path(root)).import_archive(Path(archive))]


def test_two_processes_importing_at_once(tmp_path: Path, archives: dict[str, Path]):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_import, [(str(tmp_path), str(archives["nginx"]))] * 2)
    assert results[0] == results[1]
    store = ContentStore(tmp_path)
    assert {t for i in store.images() for t in i.repo_tags} >= {"docker.io/library/nginx:latest"}
    index = json.loads((tmp_path / "images.json").read_text())
    assert len(index) == 3


async def test_image_gc_removes_unused_images_from_a_real_store(tmp_path: Path, archives: dict[str, Path]):
    """The collector over the OCI runtime's image service: what no container uses goes, with
    the layers only it had; a layer an image in use shares stays."""
    from services.nodeagent.imagegc import GcPolicy, ImageGC
    from services.nodeagent.ociruntime import OciRuntime
    from tests.fakes.cni import FakeCni

    store = ContentStore(tmp_path / "images")
    for name in ("busybox", "nginx"):
        store.import_archive(archives[name])
    runtime = OciRuntime(images=store, node_name="gc", state_dir=tmp_path / "runtime", cni=FakeCni())
    capacity, available = runtime.image_fs_info()
    assert 0 < available <= capacity
    busybox, nginx = store.get("busybox:1.35"), store.get("nginx")
    assert busybox is not None and nginx is not None
    nginx_only = set(nginx.diff_ids) - set(busybox.diff_ids)
    warned: list[tuple[str, str]] = []
    # thresholds at 0 %: any use is above them, so everything unused goes
    gc = ImageGC(runtime, used_images=lambda: ["busybox:latest"], warn=lambda r, m: warned.append((r, m)),
                 policy=GcPolicy(high_percent=0, low_percent=0, min_age=0))
    done = await gc.collect()
    assert done.remove == (nginx.id,)
    assert [i.repo_tags for i in runtime.list_images()] == [busybox.repo_tags]
    assert all(store.layer_dir(d).exists() for d in busybox.diff_ids)  # shared with nginx: kept
    assert not any(store.layer_dir(d).exists() for d in nginx_only)
    assert warned and warned[0][0] == "FreeDiskSpaceFailed"  # the image in use cannot free the rest

