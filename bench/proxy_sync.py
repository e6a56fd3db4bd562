"""Proxy sync cost: render + iptables-restore in a scratch network namespace.

Prints figures, asserts nothing.  Run as root:  python -m bench.proxy_sync

- full sync for 100 / 1,000 / 5,000 services with 3 endpoints each
  (build snapshot from API dicts, render, iptables-save, one iptables-restore);
- with the rules in place: one endpoint replaced, synced partially (only
  changed chains written) and, at 1,000 services, fully; and a sync with
  nothing changed.

Goals: full sync of 1,000 services under 1 s; a single change under 200 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import uuid
from typing import Any

from services.proxy.iptables import IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.rules import NodeSettings, render

SETTINGS = NodeSettings(node_name="bench-node", cluster_cidr="10.244.0.0/16")


def _ip(base: str, index: int) -> str:
    """Consecutive addresses in a /16: base "10.96" -> 10.96.0.1, 10.96.0.2, ..."""
    return f"{base}.{index // 250}.{index % 250 + 1}"


def make_cluster(count: int, endpoints: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services, slices = [], []
    for i in range(count):
        name = f"svc-{i:05d}"
        services.append({
            "metadata": {"namespace": "bench", "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": _ip("10.96", i),
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
        })
        slices.append({
            "metadata": {"namespace": "bench", "name": f"{name}-x1",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [_ip("10.244", i * endpoints + k)], "conditions": {"ready": True},
                           "nodeName": "bench-node"} for k in range(endpoints)],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        })
    return services, slices


class ScratchNetns:
    def __init__(self) -> None:
        self.name = "mcproxy-bench-" + uuid.uuid4().hex[:8]

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


async def timed_sync(applier: IptablesApplier, services: list[dict[str, Any]], slices: list[dict[str, Any]],
                     *, full: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    snapshot = build_snapshot(services, slices, node_name=SETTINGS.node_name)
    t1 = time.perf_counter()
    ruleset = render(snapshot, SETTINGS)
    t2 = time.perf_counter()
    plan = await applier.apply(ruleset, full=full)
    t3 = time.perf_counter()
    return {"snapshot": t1 - t0, "render": t2 - t1, "apply": t3 - t2, "total": t3 - t0,
            "bytes": float(len(plan.text)),
            "chains": float(sum(len(c) for c in plan.written_chains.values()))}


def fmt(r: dict[str, float]) -> str:
    return (f"total {r['total'] * 1000:8.1f} ms  (snapshot {r['snapshot'] * 1000:6.1f}, render "
            f"{r['render'] * 1000:6.1f}, save+restore {r['apply'] * 1000:7.1f})  "
            f"restore input {r['bytes'] / 1024:8.0f} KiB, {int(r['chains'])} chains written")


async def main(sizes: list[int], repeat: int) -> None:
    print("full sync into an empty namespace (3 endpoints per service)")
    for count in sizes:
        services, slices = make_cluster(count)
        runs = []
        for _ in range(repeat):
            with ScratchNetns() as ns:
                runs.append(await timed_sync(IptablesApplier(netns=ns), services, slices, full=True))
        best = min(runs, key=lambda r: r["total"])
        print(f"  {count:5d} services: {fmt(best)}  [median total "
              f"{statistics.median(r['total'] for r in runs) * 1000:.1f} ms of {repeat}]")

    for count, modes in ((1000, ("partial", "full")), (5000, ("partial",))):
        await steady_state(count, modes, repeat)


async def steady_state(count: int, modes: tuple[str, ...], repeat: int) -> None:
    """Syncs against rules already in the kernel: what a running proxy pays per change."""
    services, slices = make_cluster(count)
    with ScratchNetns() as ns:
        applier = IptablesApplier(netns=ns)
        await timed_sync(applier, services, slices, full=True)
        print(f"\nat {count} services, rules already in place:")
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in (*modes, "nochange")}
        changes = 0
        for _ in range(repeat):
            for mode in modes:
                # Replace one endpoint of one service with a new address.
                changes += 1
                changed = list(slices)
                victim = changes * 37 % count
                eps = [dict(e) for e in changed[victim]["endpoints"]]
                eps[0] = {**eps[0], "addresses": [_ip("10.245", changes)]}
                changed[victim] = {**changed[victim], "endpoints": eps}
                results[mode].append(await timed_sync(applier, services, changed, full=mode == "full"))
                slices = changed
            results["nochange"].append(await timed_sync(applier, services, slices, full=False))
        labels = {"partial": "one endpoint changed, partial sync",
                  "full": "one endpoint changed, full sync   ",
                  "nochange": "nothing changed, partial sync     "}
        for mode, runs in results.items():
            med = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
            print(f"  {labels[mode]}: median {fmt(med)}")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.repeat))
