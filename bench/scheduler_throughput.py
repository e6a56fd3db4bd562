"""Scheduler throughput: pods bound per second for a backlog of pending pods.

    .venv/bin/python -m bench.scheduler_throughput [--pods 1000] [--nodes 5] [--workers 1,16,64]

Starts its own etcd and API server (separate process, HTTPS) on loopback, registers Ready
nodes, creates the pending pods as the admin, then starts `python -m services.scheduler` as
the scheduler's identity in the cluster (one run per worker count, each with a fresh
namespace of pods) and watches the bindings arrive. Prints figures; asserts nothing.
Kubernetes' own CI (scheduler_perf) expects at least 100 pods/s.
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from bench.control_plane import kubeconfig_for, start_apiserver
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess

ROOT = Path(__file__).resolve().parent.parent


async def make_nodes(client: ApiClient, count: int) -> None:
    for i in range(count):
        name = f"bench-node-{i}"
        await client.create(R.NODES, {"metadata": {"name": name}})
        await client.patch(R.NODES, name, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}, subresource="status")


async def make_pods(client: ApiClient, namespace: str, count: int, concurrency: int = 32) -> float:
    await client.create(R.NAMESPACES, {"metadata": {"name": namespace}})
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            await client.create(R.PODS, {"metadata": {"name": f"p{i}", "namespace": namespace},
                                         "spec": {"containers": [{"name": "c", "image": "pause"}]}},
                                namespace)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - t0)


async def watch_bindings(client: ApiClient, namespace: str, count: int, rv: str,
                         seen: dict[str, tuple[float, str]], done: asyncio.Event) -> None:
    async for event in client.watch(R.PODS, namespace, resource_version=rv):
        node = (event.object.get("spec") or {}).get("nodeName")
        name = event.object["metadata"]["name"]
        if node and name not in seen:
            seen[name] = (time.perf_counter(), node)
            if len(seen) == count:
                done.set()
                return


async def one_run(client: ApiClient, server: ApiServerProcess, pods: int, workers: int,
                  tmp: Path) -> None:
    namespace = f"bench-w{workers}"
    create_rate = await make_pods(client, namespace, pods)
    _, rv = await client.list(R.PODS, namespace)
    seen: dict[str, tuple[float, str]] = {}
    done = asyncio.Event()
    watcher = asyncio.create_task(watch_bindings(client, namespace, pods, rv, seen, done))
    port = free_port()
    log = open(tmp / f"scheduler-{workers}.log", "wb")
    started = time.perf_counter()
    kubeconfig = kubeconfig_for(server, tmp, "scheduler")
    proc = subprocess.Popen([sys.executable, "-m", "services.scheduler", "--kubeconfig", str(kubeconfig),
                             "--health-port", str(port), "--workers", str(workers),
                             "--log-level", "WARNING"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_http_ok, f"http://127.0.0.1:{port}/readyz", timeout=30,
                                proc=proc)
        ready = time.perf_counter()
        try:
            await asyncio.wait_for(done.wait(), timeout=300)
        except TimeoutError:
            pass
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)
        log.close()
    times = sorted(t for t, _ in seen.values())
    spread = Counter(node for _, node in seen.values())
    first, last = times[0], times[-1]
    steady = (len(times) - 1) / (last - first) if last > first else float("nan")
    print(f"{workers:>8} {len(seen):>6}/{pods:<6} {steady:>9.0f} "
          f"{len(seen) / (last - ready):>12.0f} {last - started:>9.2f} "
          f"{min(spread.values()):>5}-{max(spread.values()):<5} {create_rate:>10.0f}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        server = start_apiserver(etcd.endpoint, Path(tmp))
        try:
            async with ApiClient(server.config) as client:
                await make_nodes(client, args.nodes)
                print(f"etcd {etcd.endpoint}, apiserver {server.url} (separate process), "
                      f"scheduler as its own process; {args.pods} pending pods over "
                      f"{args.nodes} Ready nodes per run")
                print(f"{'workers':>8} {'bound':>13} {'binds/s':>9} {'since ready/s':>12} "
                      f"{'wall s':>9} {'per-node':>11} {'creates/s':>10}")
                for workers in args.workers:
                    await one_run(client, server, args.pods, workers, Path(tmp))
            print("binds/s: between the first and the last binding seen on a watch; "
                  "since ready/s: from /readyz (caches synced) to the last binding; "
                  "wall s: from process start (interpreter, list, watch) to the last binding; "
                  "per-node: fewest-most pods bound per node in the run")
        finally:
            server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    sys.exit(asyncio.run(main(p.parse_args())))
