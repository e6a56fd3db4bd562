"""Proxy programming latency: an EndpointSlice change in the API -> its DNAT rule in the kernel.

    .venv/bin/python -m bench.proxy_programming_latency [--intervals 1,0.1] [--samples 15] \
        [--modes iptables,nftables]

Run as root. Starts etcd, ``python -m services.apiserver`` (HTTPS) and, per --min-sync-period
value, ``python -m services.proxy --netns <scratch>`` as kube-proxy's identity, as processes;
only the scratch namespace's tables are touched, and it is deleted at the end. One Service with
one endpoint; each sample replaces the endpoint with a new address and, from the moment the API
write returns, polls the namespace until the new DNAT is there (``iptables-save -t nat`` and
its ``--to-destination`` in iptables mode, ``list table ip kube-proxy`` through libnftables and
its ``dnat to`` in nftables mode).

Two patterns per interval:
- spaced: the change comes more than one interval after the previous sync, so it is synced
  at once (the everyday case);
- back-to-back: the next change right after the previous one is in, so the runner has to
  wait out the interval (the floor under a steady stream of changes).
Prints p50/p99/max; asserts nothing. The iptables-save poll itself costs a few ms, the nft one
about 1 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.control_plane import kubeconfig_for, start_apiserver
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, stop_process, wait_http_ok
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.nftables import Nftables, NftError

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def slice_with(ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


class RulePoll:
    """Reads the namespace's rules: `iptables-save -t nat` in iptables mode; in nftables mode
    `list table ip kube-proxy` through libnftables on a thread in the namespace (about 1 ms a
    read, where running nft takes some 16)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.nft = Nftables(netns)

    async def present(self, ip: str, mode: str) -> bool:
        if mode == "nftables":
            try:
                return f"dnat to {ip}:8080" in await self.nft.run("list table ip kube-proxy")
            except NftError:
                return False  # no table yet
        out = subprocess.run(["ip", "netns", "exec", self.netns, "iptables-save", "-t", "nat"],
                             capture_output=True, text=True, check=True).stdout
        return f"--to-destination {ip}:8080" in out

    async def wait(self, ip: str, mode: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await self.present(ip, mode):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no DNAT to {ip} after {timeout}s")


class Addresses:
    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return f"10.244.{self.next // 250}.{self.next % 250 + 1}"


async def sample(client: ApiClient, poll: RulePoll, ip: str, mode: str) -> float:
    current = await client.get(R.ENDPOINTSLICES, "web-abcde", "default")
    current["endpoints"] = slice_with(ip)["endpoints"]
    await client.replace(R.ENDPOINTSLICES, current)
    started = time.perf_counter()
    await poll.wait(ip, mode)
    return time.perf_counter() - started


def report(label: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"  {label:<13} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms  "
          f"p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms")


async def main(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="proxy-latency-"))
    netns = "mcproxy-bench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", netns], check=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with EtcdProcess(log_path=logs / "etcd.log") as etcd:
            api = start_apiserver(etcd.endpoint, logs)
            try:
                kubeconfig = kubeconfig_for(api, logs, "proxy")
                address = Addresses()
                poll = RulePoll(netns)
                async with ApiClient(api.config) as client:
                    await client.create(R.SERVICES, {"metadata": {"name": "web"}, "spec": {
                        "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, "default")
                    first = address()
                    await client.create(R.ENDPOINTSLICES, slice_with(first), "default")
                    for mode, interval in [(m, i) for m in args.modes for i in args.intervals]:
                        health = free_port()
                        proxy = start(["-m", "services.proxy", "--kubeconfig", str(kubeconfig),
                                       "--node-name", "bench-node", "--cluster-cidr", "10.244.0.0/16",
                                       "--health-port", str(health), "--netns", netns, "--proxy-mode", mode,
                                       "--min-sync-period", str(interval), "--log-level", "WARNING"],
                                      logs / f"proxy-{mode}-{interval}.log")
                        procs.append(proxy)
                        wait_http_ok(f"http://{LOOPBACK}:{health}/readyz", timeout=30, proc=proxy)
                        spaced, back_to_back = [], []
                        for _ in range(args.samples):
                            await asyncio.sleep(interval + 0.05)
                            spaced.append(await sample(client, poll, address(), mode))
                        await asyncio.sleep(interval + 0.05)
                        for _ in range(args.samples):
                            back_to_back.append(await sample(client, poll, address(), mode))
                        print(f"{mode} mode, --min-sync-period {interval}: endpoint replaced in the API -> "
                              "DNAT rule present")
                        report("spaced", spaced)
                        report("back-to-back", back_to_back)
                        stop_process(proxy)
                        procs.remove(proxy)
            finally:
                for proc in reversed(procs):
                    stop_process(proc)
                api.stop()
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    print(f"logs in {logs}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", default="1,0.1",
                        type=lambda s: [float(v) for v in s.split(",")],
                        help="--min-sync-period values to measure, comma-separated")
    parser.add_argument("--samples", type=int, default=15, help="samples per pattern")
    parser.add_argument("--modes", default="iptables,nftables", type=lambda s: s.split(","),
                        help="proxy modes to measure, comma-separated")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
