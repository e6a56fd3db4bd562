"""Job throughput: completions per second of a Job, next to a Deployment of as many pods.

    .venv/bin/python -m bench.job_throughput [--completions 100] [--parallelism 10] [--repeat 1]

Starts its own etcd and API server (separate process, HTTPS) on loopback, the jobs and
deployments controllers as their own processes with their cluster identities, and a fake
kubelet (tests/support/fake_kubelet.py) that finishes each pod as soon as it is created: a
Job pod exits 0, a Deployment pod turns Running and Ready. Measured for the Job: from its
create to its Complete condition (every pod created, finished, counted through the
tracking finalizer); for the Deployment: from its create to readyReplicas = replicas. Both
are bound by the same API writes per pod (create, status, and for the Job the finalizer's
removal and the counters). Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.control_plane import identity, start_apiserver
from cluster.etcd import EtcdProcess
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess


def job(name: str, completions: int, parallelism: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "completions": completions, "parallelism": parallelism,
        "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]}}}}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}}}


async def wait_for(fn: Any, timeout: float = 600) -> float:
    """Seconds until `fn()` is true (polled every 20 ms)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if await fn():
            return time.perf_counter() - t0
        await asyncio.sleep(0.02)
    raise TimeoutError


async def run_job(client: ApiClient, name: str, completions: int, parallelism: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    await client.create(R.JOBS, job(name, completions, parallelism), "default")

    async def first_pod() -> bool:
        pods, _ = await client.list(R.PODS, "default", label_selector=f"job-name={name}")
        return bool(pods)

    async def complete() -> bool:
        got = await client.get(R.JOBS, name, "default")
        return any(c.get("type") == "Complete" and c.get("status") == "True"
                   for c in (got.get("status") or {}).get("conditions") or [])
    first = await wait_for(first_pod)
    await wait_for(complete)
    return first, time.perf_counter() - t0


async def run_deployment(client: ApiClient, name: str, replicas: int) -> float:
    t0 = time.perf_counter()
    await client.create(R.DEPLOYMENTS, deployment(name, replicas), "default")

    async def ready() -> bool:
        got = await client.get(R.DEPLOYMENTS, name, "default")
        return int((got.get("status") or {}).get("readyReplicas") or 0) >= replicas
    await wait_for(ready)
    return time.perf_counter() - t0


def start_controller(server: ApiServerProcess, module: str, component: str, tmp: Path, *extra: str) -> Any:
    from tests.support.controllers import ControllerProcess

    user, groups = identity(component)
    return ControllerProcess(module, server, "--log-level", "WARNING", *extra, user=user, groups=groups,
                             log_path=tmp / f"{component}.log").start()


async def main(args: argparse.Namespace) -> None:
    from tests.support.fake_kubelet import FakeKubelet

    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        server = start_apiserver(etcd.endpoint, Path(tmp))
        procs = [start_controller(server, "services.jobs", "jobs", Path(tmp)),
                 start_controller(server, "services.deployments", "deployments", Path(tmp))]
        try:
            for proc in procs:
                await proc.wait_ready()
            async with ApiClient(server.config) as client, FakeKubelet(client, workers=16).running():
                n, p = args.completions, args.parallelism
                print(f"etcd {etcd.endpoint}, apiserver {server.url} (separate process), jobs and "
                      f"deployments controllers as their own processes, a fake kubelet finishing pods")
                print(f"{'run':>4} {'what':<28} {'pods':>5} {'first pod s':>12} {'total s':>8} {'pods/s':>8}")
                for i in range(args.repeat):
                    first, total = await run_job(client, f"job-{i}", n, p)
                    print(f"{i:>4} {f'Job completions={n} par={p}':<28} {n:>5} {first:>12.2f} "
                          f"{total:>8.2f} {n / total:>8.1f}")
                    total = await run_deployment(client, f"deploy-{i}", n)
                    print(f"{i:>4} {f'Deployment replicas={n}':<28} {n:>5} {'':>12} {total:>8.2f} "
                          f"{n / total:>8.1f}")
            print("Job pods/s: completions per second, create to Complete; Deployment pods/s: "
                  "pods Ready per second, create to readyReplicas = replicas")
        finally:
            for proc in procs:
                proc.kill()
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--completions", type=int, default=100)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    sys.exit(asyncio.run(main(parser.parse_args())))
