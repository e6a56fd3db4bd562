"""The live picture's delay: from a pod's create being answered to the picture with that pod in
the page's event stream. Prints figures; asserts nothing.

    .venv/bin/python -m bench.netview [--pods 50] [--background 0]

Starts etcd and the API server (HTTPS, RBAC), runs `python -m services.netview` as its own
identity (kube-system/netview) on a free loopback port, reads /api/events as the page does, and
creates pods one at a time (with --background N, N pods already there, so each picture is
bigger). Goal (issue: the packet-path explainer): a new pod on the page within 1 s. The browser
test (tests/e2e/test_netview.py) checks the same end to end in chromium.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.control_plane import kubeconfig_for, start_apiserver
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, stop_process
from kubecore.api.resources import NODES, PODS
from kubecore.client.rest import ApiClient


def _pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}


async def measure(url: str, client: ApiClient, pods: int, background: int) -> None:
    await client.create(NODES, {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"}})
    await asyncio.gather(*(client.create(PODS, _pod(f"bg{i}")) for i in range(background)))
    seen: dict[str, float] = {}
    sizes: list[int] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)

        async def read() -> None:
            async with session.get(f"{url}/api/events", timeout=aiohttp.ClientTimeout(total=None)) as resp:
                async for raw in resp.content:
                    line = raw.decode()
                    if line.startswith("data: "):
                        now = time.perf_counter()
                        sizes.append(len(line))
                        pic = json.loads(line[6:])
                        for node in pic["nodes"]:
                            for p in node["pods"]:
                                seen.setdefault(p["name"], now)
        reader = asyncio.create_task(read())
        await asyncio.sleep(1)
        delays = []
        for i in range(pods):
            name = f"p{i}"
            await client.create(PODS, _pod(name))
            answered = time.perf_counter()
            while name not in seen:
                await asyncio.sleep(0.002)
            delays.append(seen[name] - answered)
        reader.cancel()
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(f"new pod -> in the page's event stream ({pods} pods, {background} already there):")
    print(f"  p50 {statistics.median(delays) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms "
          f"(goal: under 1 s); a picture is {statistics.median(sizes) / 1024:.0f} KiB")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pods", type=int, default=50)
    p.add_argument("--background", type=int, default=0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="netview-bench-") as tmp, EtcdProcess() as etcd:
        api = start_apiserver(etcd.endpoint, Path(tmp))
        port = free_port()
        kubeconfig = kubeconfig_for(api, Path(tmp), "netview")
        log = open(Path(tmp) / "netview.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "services.netview", "--kubeconfig", str(kubeconfig),
                                 "--port", str(port), "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT)
        try:
            async def run() -> None:
                async with ApiClient(api.config) as client:
                    await measure(f"http://127.0.0.1:{port}", client, args.pods, args.background)
            asyncio.run(run())
        finally:
            stop_process(proc, timeout=10)
            log.close()
            api.stop()


if __name__ == "__main__":
    main()
