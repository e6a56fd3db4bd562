"""Pod start cost on one node: CNI ADD alone, and a whole sandbox + container start.

Prints figures, asserts nothing.  Run as root:  python -m bench.cni_add [--count 50]

Everything happens in a scratch node network namespace (the CNI plugins' host side) and pod
namespaces made for the run; all of it is removed at the end, also after a failure.

1. CNI ADD alone: ptp + host-local + portmap (the default conflist) into pre-made pod
   namespaces, one at a time, then DEL of each.
2. Runtime (host processes): run_pod_sandbox (netns, pod files, CNI ADD) + create_container +
   start_container of the agnhost image's serve-hostname on port 80 (the project's own module
   as a host process), one pod at a time; then the time until it answers HTTP, polled with curl
   from the node namespace every 10 ms (so that figure includes Python's interpreter start-up
   and is coarse by the poll interval).
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.nodeagent.cni import CniExecutor, NetworkConfigList, RuntimeConf, default_conflist
from services.nodeagent.runtime import ContainerConfig, Runtime


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return (f"{label:<34} n={len(ms):<3} p50={statistics.median(ms):7.1f} ms  p99={p99:7.1f} ms  "
            f"mean={statistics.fmean(ms):7.1f} ms  max={ms[-1]:7.1f} ms")


async def bench_cni(cni: CniExecutor, prefix: str, count: int) -> None:
    names = [f"{prefix}-b{i:03d}" for i in range(count)]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        adds, dels, results = [], [], []
        for i, name in enumerate(names):
            rt = RuntimeConf.for_pod(container_id=f"bench-{i}", netns=f"/run/netns/{name}", namespace="bench",
                                     name=f"p{i}")
            started = time.perf_counter()
            results.append((rt, await cni.add(rt)))
            adds.append(time.perf_counter() - started)
        for rt, result in results:
            started = time.perf_counter()
            await cni.delete(rt, prev_result=result.raw)
            dels.append(time.perf_counter() - started)
        print(summary("CNI ADD (ptp+host-local+portmap)", adds))
        print(summary("CNI DEL", dels))
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


async def bench_runtime(runtime: Runtime, node_ns: str, count: int) -> None:
    starts, serving = [], []
    for i in range(count):
        started = time.perf_counter()
        sandbox = await runtime.run_pod_sandbox(f"uid{i:05d}", "bench", f"web-{i}")
        container = await runtime.create_container(sandbox.id, ContainerConfig(
            name="web", image="registry.k8s.io/e2e-test-images/agnhost:2.39",
            command=[sys.executable, "-m", "services.nodeagent.workloads.agnhost"],
            args=["serve-hostname", "--port", "80"],
            env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])}))
        await runtime.start_container(container.id)
        starts.append(time.perf_counter() - started)
        while subprocess.run(["nsenter", f"--net=/run/netns/{node_ns}", "curl", "-sf", "--max-time", "1",
                              f"http://{sandbox.ip}/"], capture_output=True, check=False).returncode != 0:
            if time.perf_counter() - started > 30:
                raise TimeoutError(f"pod {i} never answered")
            await asyncio.sleep(0.01)
        serving.append(time.perf_counter() - started)
    print(summary("sandbox + container start", starts))
    print(summary("... until it answers HTTP", serving))
    started = time.perf_counter()
    removed = await runtime.cleanup_orphans(set())
    print(f"{'cleanup of all pods':<34} n={len(removed):<3} total={1000 * (time.perf_counter() - started):7.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    ns = parser.parse_args()
    node = f"bench{secrets.token_hex(2)}"
    node_ns = f"mc-{node}-node"
    tmp = Path(tempfile.mkdtemp(prefix="mc-bench-cni-"))
    subprocess.run(["ip", "netns", "add", node_ns], check=True)
    runtime = None
    try:
        subprocess.run(["ip", "-n", node_ns, "link", "set", "lo", "up"], check=True)
        conflist = NetworkConfigList.from_dict(default_conflist(pod_cidr="10.244.0.0/16", ipam_data_dir=tmp / "ipam"))
        cni = CniExecutor(conflist, host_netns=node_ns)
        await cni.validate()
        await bench_cni(cni, f"mc-{node}", ns.count)
        runtime = Runtime(node_name=node, state_dir=tmp / "state", cni=cni)
        await bench_runtime(runtime, node_ns, ns.count)
    finally:
        if runtime is not None:
            await runtime.cleanup_orphans(set())
            runtime.close()
        subprocess.run(["ip", "netns", "delete", node_ns], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
