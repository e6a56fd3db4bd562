"""Network programming latency across nodes: a pod's Ready status written -> its DNAT rule in
every node's packet filter, while 100 other pods of the same Service churn. Prints figures;
asserts nothing. Run as root:

    .venv/bin/python -m bench.network_programming_latency [--modes iptables,nftables]
        [--min-sync-periods 1,0.1] [--samples 60] [--churn-pods 100] [--churn-rate 20]

Starts its own etcd, API server (HTTPS), EndpointSlice controller and two proxies (each its own
process and identity, the proxies programming a scratch network namespace each, as two nodes),
and stops them. Each sample turns one probe pod Ready; a poller thread per namespace reads its rules
(`iptables-save -t nat`, or `list table ip kube-proxy` through libnftables) in a loop and notes
when the probe's DNAT first appears there; the sample is the later of the two (Kubernetes'
network programming latency SLI, whose SLO is 30 s at p99). A read takes about 1 ms in
nftables mode and some 20 ms in iptables mode, which bounds the resolution.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.control_plane import kubeconfig_for, start_apiserver
from bench.endpointslice_latency import NS, bounded, churn, make_pod, pct, set_ready
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, stop_process, wait_http_ok
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.nftables import NftContext, NftError, join_netns

ROOT = Path(__file__).resolve().parent.parent


def probe_ip(i: int) -> str:
    return f"10.3.{i // 200}.{i % 200 + 1}"


class RulePoller:
    """Reads each namespace's rules in a loop (a thread) and notes when each awaited endpoint
    IP's DNAT first shows up there."""

    def __init__(self, namespaces: list[str], mode: str) -> None:
        self.namespaces, self.mode = namespaces, mode
        self.waiting: set[str] = set()
        self.seen: dict[tuple[str, str], float] = {}  # (namespace, ip) -> time first seen
        self.stop = threading.Event()
        self.polls = 0

    def start(self) -> list[threading.Thread]:
        """One polling thread per namespace (an nftables one joins its namespace and lists
        the table through libnftables: about 1 ms a read, where running nft takes 16)."""
        threads = [threading.Thread(target=self.run, args=(ns,), daemon=True) for ns in self.namespaces]
        for thread in threads:
            thread.start()
        return threads

    def reader(self, ns: str) -> Callable[[], str]:
        if self.mode == "nftables":
            join_netns(ns)
            context = NftContext()

            def nft() -> str:
                try:
                    return context.run("list table ip kube-proxy")
                except NftError:
                    return ""  # not made yet
            return nft
        argv = ["ip", "netns", "exec", ns, "iptables-save", "-t", "nat"]
        return lambda: subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    def run(self, ns: str) -> None:
        marker = "dnat to {}:8080" if self.mode == "nftables" else "--to-destination {}:8080"
        read = self.reader(ns)
        while not self.stop.is_set():
            text = read()
            now = time.perf_counter()
            self.polls += 1
            for ip in list(self.waiting):
                if (ns, ip) not in self.seen and marker.format(ip) in text:
                    self.seen[(ns, ip)] = now
            time.sleep(0.002)

    def everywhere(self, ip: str) -> float | None:
        times = [self.seen.get((ns, ip)) for ns in self.namespaces]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)


def start_proxy(kubeconfig: Path, node: str, netns: str, mode: str, interval: float, log: Path
                ) -> tuple[subprocess.Popen[bytes], int]:
    health = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.proxy", "--kubeconfig", str(kubeconfig), "--node-name", node,
             "--cluster-cidr", "10.0.0.0/8", "--health-port", str(health), "--netns", netns,
             "--proxy-mode", mode, "--min-sync-period", str(interval), "--log-level", "WARNING"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, health


async def measure(client: ApiClient, kubeconfig: Path, logs: Path, mode: str, interval: float,
                  args: argparse.Namespace, first_probe: int, counts: dict[str, int]) -> None:
    namespaces = [f"mcnpl-{uuid.uuid4().hex[:6]}-{n}" for n in ("a", "b")]
    procs: list[subprocess.Popen[bytes]] = []
    poller = RulePoller(namespaces, mode)
    try:
        for ns, node in zip(namespaces, ("node-a", "node-b"), strict=True):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            proc, health = start_proxy(kubeconfig, node, ns, mode, interval, logs / f"proxy-{ns}.log")
            procs.append(proc)
            wait_http_ok(f"http://127.0.0.1:{health}/readyz", timeout=60, proc=proc)
        threads = poller.start()
        before = dict(counts)
        written: dict[str, float] = {}
        for i in range(first_probe, first_probe + args.samples):
            ip = probe_ip(i)
            poller.waiting.add(ip)
            await set_ready(client, f"probe-{i}", ip, True)
            written[ip] = time.perf_counter()
            await asyncio.sleep(random.uniform(0, 2 * args.interval))
        deadline = time.perf_counter() + 15
        while any(poller.everywhere(ip) is None for ip in written) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        poller.stop.set()
        for thread in threads:
            thread.join(10)
    finally:
        for proc in procs:
            stop_process(proc)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    latencies = [max(0.0, t - written[ip]) * 1000 for ip in written
                 if (t := poller.everywhere(ip)) is not None]
    missing = len(written) - len(latencies)
    print(f"{mode} mode, --min-sync-period {interval:g}: pod Ready written -> DNAT on both nodes, "
          f"{len(latencies)} samples ({missing} not on both within 15 s; churn meanwhile "
          f"{counts['flips'] - before['flips']} ready flips, {counts['recreates'] - before['recreates']} "
          f"delete+create, {counts['errors'] - before['errors']} errors; {poller.polls} polls)")
    if latencies:
        print(f"  p50 {pct(latencies, 0.5):7.1f} ms   p90 {pct(latencies, 0.9):7.1f} ms   "
              f"p99 {pct(latencies, 0.99):7.1f} ms   max {max(latencies):7.1f} ms")


async def main(args: argparse.Namespace) -> None:
    runs = [(m, i) for m in args.modes for i in args.min_sync_periods]
    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        logs = Path(tmp)
        api = start_apiserver(etcd.endpoint, logs)
        health = free_port()
        controller = subprocess.Popen(
            [sys.executable, "-m", "services.endpointslice", "--kubeconfig",
             str(kubeconfig_for(api, logs, "endpointslice")), "--health-port", str(health),
             "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http_ok(f"http://127.0.0.1:{health}/readyz", timeout=30, proc=controller)
            kubeconfig = kubeconfig_for(api, logs, "proxy")
            async with ApiClient(api.config) as client:
                await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": NS},
                                                 "spec": {"selector": {"app": "web"},
                                                          "ports": [{"port": 80, "targetPort": 8080}]}})
                await bounded(make_pod(client, f"churn-{i}-0", f"10.2.{i // 200}.{i % 200 + 1}", True)
                              for i in range(args.churn_pods))
                await bounded(make_pod(client, f"probe-{i}", probe_ip(i), False)
                              for i in range(args.samples * len(runs)))
                await asyncio.sleep(2)
                stop = asyncio.Event()
                counts = {"flips": 0, "recreates": 0, "errors": 0}
                churn_task = asyncio.create_task(churn(client, args.churn_pods, args.churn_rate, stop, counts))
                try:
                    for n, (mode, interval) in enumerate(runs):
                        await measure(client, kubeconfig, logs, mode, interval, args, n * args.samples, counts)
                finally:
                    stop.set()
                    await churn_task
        finally:
            stop_process(controller)
            api.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="iptables,nftables", type=lambda s: s.split(","))
    parser.add_argument("--min-sync-periods", default="1,0.1", type=lambda s: [float(v) for v in s.split(",")])
    parser.add_argument("--samples", type=int, default=60, help="probe pods turned ready per run")
    parser.add_argument("--churn-pods", type=int, default=100)
    parser.add_argument("--churn-rate", type=float, default=20.0, help="churn operations per second")
    parser.add_argument("--interval", type=float, default=0.1, help="mean gap between samples, s")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
