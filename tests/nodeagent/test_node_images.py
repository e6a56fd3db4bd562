"""The Node's status.images, as kubelet writes it from the runtime's images."""
from __future__ import annotations

from pathlib import Path

from services.nodeagent.agent import AgentConfig, node_images, node_status
from services.nodeagent.oci.image import Image, ImageConfig


def _image(n: int, size: int, tags: tuple[str, ...] = ()) -> Image:
    return Image(id=f"sha256:{n:064x}", repo_tags=tags,
                 repo_digests=tuple(f"{t.rsplit(':', 1)[0]}@sha256:{n:064x}" for t in tags[:1]), size=size,
                 config=ImageConfig(), diff_ids=())


def test_biggest_first_named_by_digests_then_tags():
    images = [_image(1, 10, ("docker.io/library/busybox:1.35", "docker.io/library/busybox:latest")),
              _image(2, 500, ("docker.io/library/nginx:latest",)), _image(3, 7)]
    assert node_images(images) == [
        {"names": [f"docker.io/library/nginx@sha256:{2:064x}", "docker.io/library/nginx:latest"], "sizeBytes": 500},
        {"names": [f"docker.io/library/busybox@sha256:{1:064x}", "docker.io/library/busybox:1.35",
                   "docker.io/library/busybox:latest"], "sizeBytes": 10},
        {"names": [], "sizeBytes": 7},
    ]


def test_at_most_fifty_and_only_when_there_are_any():
    images = [_image(i, i, (f"docker.io/x/app{i}:1",)) for i in range(1, 61)]
    shown = node_images(images)
    assert len(shown) == 50 and shown[0]["sizeBytes"] == 60 and shown[-1]["sizeBytes"] == 11
    cfg = AgentConfig(apiserver="https://127.0.0.1:6443", node_name="n1", node_ip="10.0.0.1",
                      state_dir=Path("/nonexistent"), cni_conf_dir=Path("/nonexistent"))
    assert "images" not in node_status(cfg, pod_cidr=None)
    assert len(node_status(cfg, pod_cidr=None, images=images)["images"]) == 50
