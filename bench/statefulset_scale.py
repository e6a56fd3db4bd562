"""StatefulSet scale-up: time for a StatefulSet of N pods to reach N ready, with OrderedReady and
with Parallel, next to a Deployment of N in the same run.

    .venv/bin/python -m bench.statefulset_scale [--replicas 20] [--ready-delay 0.05] [--repeat 3]

Starts its own etcd and API server (separate process, HTTPS) on loopback, and the StatefulSet
and Deployment controllers as their own processes under their cluster identities. No scheduler
or node agent: the benchmark plays the kubelet, marking each new pod Running and Ready
`--ready-delay` seconds after it sees it (what a real pod's start costs is bench.pod_startup's).
Each run has its own namespace; the figure is from the create to the workload's status showing
N ready replicas. OrderedReady pays one create -> watch -> ready -> watch round per pod, so
its time grows with N; Parallel and the Deployment create in bursts. Prints figures; asserts
nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.control_plane import kubeconfig_for, start_apiserver
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess

ROOT = Path(__file__).resolve().parent.parent
CONTROLLERS = {"statefulset": "services.statefulset", "deployments": "services.deployments"}


def workload(kind: str, name: str, replicas: int, policy: str | None = None) -> Obj:
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "pause"}]}}}
    if kind == "StatefulSet":
        spec.update(serviceName=name, podManagementPolicy=policy)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


async def fake_kubelet(client: ApiClient, namespace: str, delay: float) -> None:
    """Every pod that appears is made Running and Ready after `delay`."""
    tasks: set[asyncio.Task[None]] = set()

    async def ready(name: str) -> None:
        await asyncio.sleep(delay)
        status = {"phase": "Running", "podIP": "10.244.0.2",
                  "conditions": [{"type": "Ready", "status": "True"}]}
        with contextlib.suppress(ApiError):
            await client.patch(R.PODS, name, {"status": status}, namespace, subresource="status")

    _, rv = await client.list(R.PODS, namespace)
    async for event in client.watch(R.PODS, namespace, resource_version=rv):
        if event.type == "ADDED":
            task = asyncio.create_task(ready(event.object["metadata"]["name"]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


async def time_to_ready(client: ApiClient, rt: R.ResourceType, obj: Obj, namespace: str,
                        delay: float) -> float:
    await client.create(R.NAMESPACES, {"metadata": {"name": namespace}})
    kubelet = asyncio.create_task(fake_kubelet(client, namespace, delay))
    await asyncio.sleep(0.2)  # the kubelet's watch is open
    wanted = obj["spec"]["replicas"]
    try:
        _, rv = await client.list(rt, namespace)
        t0 = time.perf_counter()
        await client.create(rt, obj, namespace)
        async for event in client.watch(rt, namespace, resource_version=rv):
            if (event.object.get("status") or {}).get("readyReplicas") == wanted:
                return time.perf_counter() - t0
        return float("nan")
    finally:
        kubelet.cancel()
        await asyncio.gather(kubelet, return_exceptions=True)


def start_controllers(server: ApiServerProcess, tmp: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for component, module in CONTROLLERS.items():
        port = free_port()
        with open(tmp / f"{component}.log", "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, "-m", module, "--kubeconfig",
                                     str(kubeconfig_for(server, tmp, component)), "--health-port",
                                     str(port), "--log-level", "WARNING"],
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, proc=proc)
    return procs


CASES = (("StatefulSet OrderedReady", R.STATEFULSETS, "StatefulSet", "OrderedReady"),
         ("StatefulSet Parallel", R.STATEFULSETS, "StatefulSet", "Parallel"),
         ("Deployment", R.DEPLOYMENTS, "Deployment", None))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        server = start_apiserver(etcd.endpoint, Path(tmp))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs = start_controllers(server, Path(tmp))
            print(f"etcd {etcd.endpoint}, apiserver {server.url}; statefulset and deployments "
                  f"controllers as processes; {args.replicas} replicas, pods Ready "
                  f"{args.ready_delay * 1000:.0f} ms after they appear; {args.repeat} run(s) each")
            print(f"{'workload':<26} {'median s':>9} {'min s':>7} {'max s':>7} {'per pod ms':>11}")
            results: dict[str, list[float]] = {}
            async with ApiClient(server.config) as client:
                for run in range(args.repeat):
                    for label, rt, kind, policy in CASES:
                        ns = f"bench-{kind.lower()}-{(policy or 'rs').lower()}-{run}"
                        obj = workload(kind, "web", args.replicas, policy)
                        results.setdefault(label, []).append(
                            await time_to_ready(client, rt, obj, ns, args.ready_delay))
            for label, _, _, _ in CASES:
                times = results[label]
                med = statistics.median(times)
                print(f"{label:<26} {med:>9.2f} {min(times):>7.2f} {max(times):>7.2f} "
                      f"{med / args.replicas * 1000:>11.1f}")
            print("from the create returning to a watch event of the workload with readyReplicas "
                  "= replicas; per pod: median / replicas")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await asyncio.to_thread(proc.wait, 15)
            server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--replicas", type=int, default=20)
    p.add_argument("--ready-delay", type=float, default=0.05)
    p.add_argument("--repeat", type=int, default=3)
    sys.exit(asyncio.run(main(p.parse_args())))
