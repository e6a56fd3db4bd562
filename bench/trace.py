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
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from typing import Any

from bench.proxy_sync import SETTINGS, ScratchNetns, make_cluster
from kubecore.nettrace.trace import Destination, World, trace
from services.proxy.iptables import IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.rules import render

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.services, args.repeat))
