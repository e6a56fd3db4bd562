"""`trace` cost on a node with many Services. Prints figures, asserts nothing. Run as root:

    .venv/bin/python -m bench.trace [--services 1000] [--repeat 5]

The proxy's rules for N Services (3 endpoints each, on two nodes) are loaded into a scratch
network namespace with iptables-restore; then, as `minikubectl trace` does:
- `iptables-save -c` of that namespace (what the node agent runs for /debug/network);
- parsing it and tracing a pod's packet to the last Service (the walk passes every
  KUBE-SERVICES rule before its own);
- the JSON of both nodes' views (what the API server's node proxy carries).

Goal (issue: the packet-path explainer): a trace under 1 s at 1,000 Services. The API reads and
the node proxy's round trips come on top; `tests/e2e/test_trace.py` runs it on a live cluster.

With `--cluster`, the whole command instead, on the cluster `make up` started: the seed's
manifests (tests/e2e/manifests.yaml: Deployment `test` x3, Service `mysvc`, pod `client`) are
applied, N-1 more Services selecting the same three pods are created (so every node holds the
rules of N Services of 3 endpoints), and `minikubectl trace client svc/<the last>:8080` is timed
as a user runs it (a new process each time: start-up, API reads, both nodes' views through the
node proxy, the trace), with and without `--probe`. What it created is deleted afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.proxy_sync import SETTINGS, ScratchNetns, make_cluster
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.config import from_flags
from kubecore.client.rest import ApiClient
from kubecore.nettrace.trace import Destination, World, trace
from services.proxy.iptables import IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.rules import render

ROOT = Path(__file__).resolve().parent.parent
NODES = {"bench-node": "172.18.0.3", "bench-node-2": "172.18.0.4"}


def world_for(services: list[dict[str, Any]], slices: list[dict[str, Any]], saved: str) -> tuple[World, dict]:
    pods, routes = [], [{"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "type": 1}]
    for s in slices:
        for i, ep in enumerate(s["endpoints"]):
            ip = ep["addresses"][0]
            node = "bench-node" if i % 2 == 0 else "bench-node-2"
            pods.append({"metadata": {"namespace": "bench", "name": f"{s['metadata']['name']}-{i}"},
                         "spec": {"nodeName": node}, "status": {"podIP": ip}})
            if node == "bench-node":
                routes.append({"dst": f"{ip}/32", "dev": f"veth{len(routes)}", "scope": 253, "type": 1})
    client = {"metadata": {"namespace": "bench", "name": "client"}, "spec": {"nodeName": "bench-node"},
              "status": {"podIP": "10.244.250.2"}}
    routes.append({"dst": "10.244.250.2/32", "dev": "vethclient", "scope": 253, "type": 1})
    view = {"node": "bench-node", "iptables": saved, "addresses": [{"address": "172.18.0.3"}], "routes": routes,
            "pods": [{"namespace": "bench", "name": "client", "ip": "10.244.250.2", "hostVeth": "vethclient",
                      "routes": [{"dst": "default", "gateway": "10.244.250.1", "dev": "eth0", "type": 1}]}]}
    other = {**view, "node": "bench-node-2", "addresses": [{"address": "172.18.0.4"}],
             "routes": [{"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "type": 1}], "pods": []}
    nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, ip in NODES.items()]
    return World(pods=[*pods, client], services=services, slices=slices, nodes=nodes,
                 node_views={"bench-node": view, "bench-node-2": other}), client


async def main(count: int, repeat: int) -> None:
    services, slices = make_cluster(count)
    with ScratchNetns() as ns:
        await IptablesApplier(netns=ns).apply(render(build_snapshot(services, slices, node_name=SETTINGS.node_name),
                                                     SETTINGS), full=True)
        saves, traces, encodes = [], [], []
        last = services[-1]["metadata"]["name"]
        for _ in range(repeat):
            t0 = time.perf_counter()
            saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-c"], capture_output=True,
                                   text=True, check=True).stdout
            t1 = time.perf_counter()
            world, client = world_for(services, slices, saved)
            account = trace(world, client, Destination("service", last, "bench", "80"))
            t2 = time.perf_counter()
            json.dumps(dict(world.node_views))
            t3 = time.perf_counter()
            saves.append(t1 - t0)
            traces.append(t2 - t1)
            encodes.append(t3 - t2)
        assert account.ok, account.summary
    print(f"trace to the last of {count} Services (3 endpoints each), median of {repeat}:")
    print(f"  iptables-save -c on the node:        {statistics.median(saves) * 1000:7.1f} ms "
          f"({len(saved) / 1024:.0f} KiB, {saved.count(chr(10) + '[')} rules)")
    print(f"  parse + trace (both nodes' tables):  {statistics.median(traces) * 1000:7.1f} ms "
          f"({len(account.steps)} steps, {len(account.endpoints)} endpoints)")
    print(f"  JSON of both nodes' views:           {statistics.median(encodes) * 1000:7.1f} ms")
    total = statistics.median(saves) + statistics.median(traces) + statistics.median(encodes)
    print(f"  together:                            {total * 1000:7.1f} ms (goal: under 1 s with the API reads)")


MANIFESTS = ROOT / "tests" / "e2e" / "manifests.yaml"
EXTRA = "bench-trace"


def minikubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minikubectl", *args], cwd=ROOT, capture_output=True, text=True,
                          check=check, timeout=120)


async def on_cluster(count: int, repeat: int) -> None:
    kubeconfig = json.loads(minikubectl("cluster", "status", "-o", "json").stdout)["kubeconfig"]
    minikubectl("--kubeconfig", kubeconfig, "apply", "-f", str(MANIFESTS))
    names = [f"{EXTRA}-{i:04d}" for i in range(count - 1)]
    async with ApiClient(from_flags(kubeconfig, None)) as client:
        gate = asyncio.Semaphore(16)
        try:

            async def create(name: str) -> None:
                async with gate:
                    await client.create(R.SERVICES, {"metadata": {"name": name}, "spec": {
                        "selector": {"app": "test"}, "ports": [{"port": 8080, "targetPort": 8080}]}}, "default")
            started = time.perf_counter()
            await asyncio.gather(*(create(n) for n in names))
            print(f"{len(names)} Services created in {time.perf_counter() - started:.1f} s (and mysvc)")
            target = f"svc/{names[-1]}:8080" if names else "svc/mysvc:8080"
            deadline = time.monotonic() + 300
            while (done := minikubectl("--kubeconfig", kubeconfig, "trace", "client", target, check=False)
                   ).returncode != 0:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no trace got through in 300 s: {done.stdout[-500:]}{done.stderr}")
                await asyncio.sleep(2)
            for flags in ((), ("--probe",)):
                runs = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    minikubectl("--kubeconfig", kubeconfig, "trace", "client", target, *flags)
                    runs.append(time.perf_counter() - t0)
                print(f"  minikubectl trace client {target} {' '.join(flags)}: median "
                      f"{statistics.median(runs) * 1000:.0f} ms, max {max(runs) * 1000:.0f} ms of {repeat}")
            t0 = time.perf_counter()
            minikubectl("--kubeconfig", kubeconfig, "version", "--client")
            print(f"  minikubectl version --client (start-up alone): {(time.perf_counter() - t0) * 1000:.0f} ms")
        finally:
            async def delete(name: str) -> None:
                async with gate:
                    with contextlib.suppress(ApiError):
                        await client.delete(R.SERVICES, name, "default")
            await asyncio.gather(*(delete(n) for n in names))
            minikubectl("--kubeconfig", kubeconfig, "delete", "-f", str(MANIFESTS), check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cluster", action="store_true", help="time the command on the running cluster")
    args = parser.parse_args()
    asyncio.run(on_cluster(args.services, args.repeat) if args.cluster else main(args.services, args.repeat))
