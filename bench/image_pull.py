"""Image pull + unpack: the node's puller (oci.registry into oci.store) next to skopeo + umoci on
the same image from the same local registry. Prints figures; asserts nothing.

    .venv/bin/python -m bench.image_pull [--image netshoot] [--rounds 3]

Needs root (layers keep owners and device nodes), Debian's docker-registry, skopeo and umoci.
The registry runs on loopback with its storage in a temporary directory; everything goes at
the end.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cluster import nodeimages, registry
from cluster.procs import free_port
from services.nodeagent.oci.registry import Puller
from services.nodeagent.oci.store import ContentStore


def _ours(ref: str, store: Path) -> float:
    start = time.perf_counter()
    asyncio.run(Puller(ContentStore(store)).pull(ref))
    took = time.perf_counter() - start
    shutil.rmtree(store)
    return took


def _skopeo_umoci(ref: str, layout: Path, bundle: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:1"],
                   check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", str(bundle)], check=True, capture_output=True)
    took = time.perf_counter() - start
    shutil.rmtree(layout)
    shutil.rmtree(bundle)
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", default="netshoot", help=f"one of {', '.join(nodeimages.recipes())}")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    built = nodeimages.build(a.image)
    tag = nodeimages.recipes()[a.image].names[0].rsplit(":", 1)[1]
    with tempfile.TemporaryDirectory(prefix="image-pull-") as tmp_name:
        tmp = Path(tmp_name)
        with registry.serving(tmp / "registry", f"127.0.0.1:{free_port()}") as url:
            host = url.removeprefix("http://")
            registry.push(f"oci-archive:{built.archive}:{tag}", url, f"bench/{a.image}:1")
            ref = f"{host}/bench/{a.image}:1"
            ours, theirs = [], []
            for i in range(a.rounds):
                ours.append(_ours(ref, tmp / f"store{i}"))
                theirs.append(_skopeo_umoci(ref, tmp / f"layout{i}", tmp / f"bundle{i}"))
    print(f"pull + unpack of {a.image} ({built.size / 1e6:.1f} MB compressed) from a loopback registry, "
          f"{a.rounds} rounds, median:")
    print(f"  node puller (oci.registry -> oci.store): {statistics.median(ours):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in ours)})")
    print(f"  skopeo copy + umoci unpack:              {statistics.median(theirs):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in theirs)})")


if __name__ == "__main__":
    main()
