"""EndpointSlice programming latency: from a pod's Ready status write returning to its
endpoint showing ready=true in a slice, as seen through a watch, while other pods of the
same service churn (flip ready/not ready, get deleted and recreated). Prints figures;
asserts nothing.

    .venv/bin/python -m bench.endpointslice_latency [--samples 300] [--churn-pods 100]
        [--churn-rate 50]

Starts its own etcd, API server (HTTPS) and EndpointSlice controller (each its own process,
the controller as its identity in the cluster) on loopback and stops them; the benchmark is
the admin.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.control_plane import kubeconfig_for, start_apiserver
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient

ROOT = Path(__file__).resolve().parent.parent
NS = "default"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def set_ready(client: ApiClient, name: str, ip: str, ready: bool) -> None:
    status = {"phase": "Running", "podIP": ip,
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.patch(R.PODS, name, {"status": status}, NS, subresource="status")


async def make_pod(client: ApiClient, name: str, ip: str, ready: bool) -> None:
    await client.create(R.PODS, {"metadata": {"name": name, "namespace": NS,
                                              "labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, NS)
    await set_ready(client, name, ip, ready)


async def bounded(coros, limit: int = 20) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            await c
    await asyncio.gather(*(one(c) for c in coros))


class SliceWatcher:
    """Watches the service's slices; records when each probe pod is first seen ready."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.seen_ready: dict[str, float] = {}
        self.waiting: set[str] = set()
        self.events = 0

    async def run(self, resource_version: str) -> None:
        stream = self.client.watch(R.ENDPOINTSLICES, NS, resource_version=resource_version,
                                   label_selector="kubernetes.io/service-name=web")
        async with contextlib.aclosing(stream):
            async for event in stream:
                now = time.perf_counter()
                self.events += 1
                if event.type == "DELETED":
                    continue
                for ep in event.object.get("endpoints") or []:
                    name = (ep.get("targetRef") or {}).get("name", "")
                    if name in self.waiting and (ep.get("conditions") or {}).get("ready"):
                        self.waiting.discard(name)
                        self.seen_ready[name] = now


async def churn(client: ApiClient, n: int, rate: float, stop: asyncio.Event,
                counts: dict[str, int]) -> None:
    generation = {i: 0 for i in range(n)}
    ready = {i: True for i in range(n)}
    busy: set[int] = set()

    async def op(i: int) -> None:
        try:
            ip = f"10.2.{i // 200}.{i % 200 + 1}"
            if random.random() < 0.7:
                ready[i] = not ready[i]
                await set_ready(client, f"churn-{i}-{generation[i]}", ip, ready[i])
                counts["flips"] += 1
            else:
                await client.delete(R.PODS, f"churn-{i}-{generation[i]}", NS)
                generation[i] += 1
                ready[i] = random.random() < 0.5
                await make_pod(client, f"churn-{i}-{generation[i]}", ip, ready[i])
                counts["recreates"] += 1
        except ApiError as exc:
            counts["errors"] += 1
            print(f"churn error: {exc}", file=sys.stderr)
        finally:
            busy.discard(i)

    tasks: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        free = [i for i in range(n) if i not in busy]
        if free:
            i = random.choice(free)
            busy.add(i)
            task = asyncio.create_task(op(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(random.expovariate(rate))
    await asyncio.gather(*tasks)


async def metrics(port: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("endpointslice_") and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        api = start_apiserver(etcd.endpoint, Path(tmp))
        health_port = free_port()
        log = open(Path(tmp) / "endpointslice.log", "wb")
        kubeconfig = kubeconfig_for(api, Path(tmp), "endpointslice")
        controller = subprocess.Popen(
            [sys.executable, "-m", "services.endpointslice", "--kubeconfig", str(kubeconfig),
             "--health-port", str(health_port), "--log-level", "WARNING"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http_ok(f"http://127.0.0.1:{health_port}/readyz", timeout=30, proc=controller)
            async with ApiClient(api.config) as client:
                await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": NS},
                                                 "spec": {"selector": {"app": "web"},
                                                          "ports": [{"port": 80, "targetPort": 8080}]}})
                t = time.perf_counter()
                await bounded(make_pod(client, f"churn-{i}-0", f"10.2.{i // 200}.{i % 200 + 1}", True)
                              for i in range(args.churn_pods))
                await bounded(make_pod(client, f"probe-{i}", f"10.3.{i // 200}.{i % 200 + 1}", False)
                              for i in range(args.samples))
                print(f"set-up: {args.churn_pods} churning + {args.samples} probe pods in "
                      f"{time.perf_counter() - t:.1f}s")
                await asyncio.sleep(2)  # let the controller place them all
                _, rv = await client.list(R.ENDPOINTSLICES, NS)
                watcher = SliceWatcher(client)
                watch_task = asyncio.create_task(watcher.run(rv))
                await asyncio.sleep(0.3)
                before = await metrics(health_port)
                stop = asyncio.Event()
                counts = {"flips": 0, "recreates": 0, "errors": 0}
                churn_task = asyncio.create_task(churn(client, args.churn_pods, args.churn_rate,
                                                       stop, counts))
                written: dict[str, float] = {}
                t_churn = time.perf_counter()
                for i in range(args.samples):
                    name = f"probe-{i}"
                    watcher.waiting.add(name)
                    await set_ready(client, name, f"10.3.{i // 200}.{i % 200 + 1}", True)
                    written[name] = time.perf_counter()
                    await asyncio.sleep(random.uniform(0, 2 * args.interval))
                deadline = time.perf_counter() + 10
                while watcher.waiting and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                stop.set()
                await churn_task
                churn_seconds = time.perf_counter() - t_churn
                watch_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watch_task
                after = await metrics(health_port)
        finally:
            controller.terminate()
            controller.wait(15)
            log.close()
            api.stop()

    latencies = [max(0.0, watcher.seen_ready[n] - written[n]) * 1000
                 for n in written if n in watcher.seen_ready]
    early = sum(1 for n in written if n in watcher.seen_ready and watcher.seen_ready[n] < written[n])
    missing = len(written) - len(latencies)
    ops = counts["flips"] + counts["recreates"]
    print(f"churn: {ops} ops in {churn_seconds:.1f}s ({ops / churn_seconds:.0f}/s: "
          f"{counts['flips']} ready flips, {counts['recreates']} delete+create; "
          f"{counts['errors']} errors) over {args.churn_pods} pods")
    print(f"pod Ready written -> endpoint ready in a watched slice, {len(latencies)} samples"
          f" ({missing} not seen within 10s, {early} seen before the write returned):")
    if latencies:
        print(f"  p50 {pct(latencies, 0.5):.1f} ms   p90 {pct(latencies, 0.9):.1f} ms   "
              f"p99 {pct(latencies, 0.99):.1f} ms   max {max(latencies):.1f} ms")

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)
    writes = {op: delta(f'endpointslice_slice_writes_total{{op="{op}"}}')
              for op in ("create", "update", "delete")}
    syncs = {r: delta(f'endpointslice_syncs_total{{result="{r}"}}')
             for r in ("changed", "noop", "waiting", "error")}
    print(f"controller during the run: slice writes {writes}, syncs {syncs}, "
          f"own echoes skipped {delta('endpointslice_own_write_echoes_total'):.0f}, "
          f"slice watch events {watcher.events}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="probe pods turned ready, one each")
    parser.add_argument("--churn-pods", type=int, default=100)
    parser.add_argument("--churn-rate", type=float, default=50.0, help="churn operations per second")
    parser.add_argument("--interval", type=float, default=0.05, help="mean gap between samples, s")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
