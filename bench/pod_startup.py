"""Pod start-up benchmark: pod created -> Running with an IP, over two node agents; and the
agent's memory with a full node (110 pods). Prints figures; asserts nothing.

    .venv/bin/python -m bench.pod_startup [--pods 100] [--full 110] [--concurrency 10] [--rate 0] [--image busybox]
        [--runtimes process,runc] [--network-policy off,on]

Also prints the CPU each process spent per pod started (etcd, the API server, each agent with
the CNI plugins and runtime calls it waited for, and alone).

--network-policy on also runs each node's NetworkPolicy agent (`services.netpol`, programming
the node's namespace) and has the node agents wait for it before a new pod's containers
start (`--network-policy-agent`), as `cluster up` does: what that wait costs.

--rate N paces the creates at N pods/s (0: as fast as --concurrency allows), as Kubernetes'
density tests measure start-up at a given pod throughput rather than in one burst.

Needs root, iproute2, util-linux and the CNI plugins. Starts its own etcd and API server
(HTTPS) on loopback, builds a scratch node network (a namespace with a bridge, one namespace
per node; nothing in the root namespace), runs one agent process per node with `--host-netns`
and `--container-runtime` (each of --runtimes in turn, so before/after figures come from one run)
as that node's identity (system:node:<name>), binds the pods itself as the admin (round-robin,
no scheduler), and removes everything at the end. Containers run `sleep` by default, so the
figures are the agent's and CNI's work, not an interpreter start.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.apiserver import cpu_seconds
from bench.control_plane import kubeconfig_for, start_apiserver
from cluster import hoststate
from cluster.etcd import EtcdProcess
from cluster.procs import free_port, stop_process
from kubecore.api.errors import ApiError
from kubecore.api.resources import NODES, PODS
from kubecore.client.config import ClientConfig
from kubecore.client.rest import ApiClient
from tests.nodeagent.agent_harness import SUBNET, AgentProcess, NodeNetwork

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def pod(name: str, node: str, image: str) -> dict:
    """A pod of an image the nodes have (no registry here: IfNotPresent), running `sleep` unless
    the image is nginx, which then serves (under runc; host processes always run the command)."""
    container = {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
    if image == "nginx" and RUNTIME[0] != "process":
        del container["command"]
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [container], "terminationGracePeriodSeconds": 1}}


async def start_pods(client: ApiClient, names_nodes: list[tuple[str, str]], image: str,
                     concurrency: int, rate: float = 0.0) -> list[float]:
    """Create the pods; -> seconds from each create's answer to the pod seen Running with an IP."""
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    wanted = {n for n, _ in names_nodes}
    _, rv = await client.list(PODS, "default")
    done = asyncio.Event()

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", resource_version=rv):
            o = ev.object
            name = o.get("metadata", {}).get("name")
            st = o.get("status") or {}
            if name in wanted and name not in running and st.get("phase") == "Running" and st.get("podIP"):
                running[name] = time.perf_counter()
                if len(running) == len(wanted):
                    done.set()
                    return

    watcher = asyncio.create_task(watch())
    todo = iter(names_nodes)

    start = time.perf_counter()
    slot = iter(range(len(names_nodes)))

    async def creator() -> None:
        for name, node in todo:
            if rate > 0:
                await asyncio.sleep(max(0.0, start + next(slot) / rate - time.perf_counter()))
            await client.create(PODS, pod(name, node, image))
            created[name] = time.perf_counter()

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    try:
        await asyncio.wait_for(done.wait(), 300)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    return [running[n] - created[n] for n in wanted]


async def delete_all(client: ApiClient) -> None:
    items, _ = await client.list(PODS, "default")
    await asyncio.gather(*(client.delete(PODS, p["metadata"]["name"], "default") for p in items))
    for _ in range(600):
        items, _ = await client.list(PODS, "default")
        if not items:
            return
        await asyncio.sleep(0.2)


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each process, with the children it has waited for (an agent's CNI
    plugins and runtime calls count as the agent's); the benchmark itself as "client"."""
    snap = {name: cpu_seconds(pid, children=True) for name, pid in pids.items()}
    snap.update({f"{name} own": cpu_seconds(pid) for name, pid in pids.items() if name.startswith("agent")})
    snap["client"] = cpu_seconds(os.getpid())
    return snap


def cpu_per_pod(before: dict[str, float], after: dict[str, float], pods: int) -> str:
    return ", ".join(f"{name} {(after[name] - before[name]) * 1000 / pods:.1f}" for name in before)


async def bench(args: argparse.Namespace, api: ClientConfig, network: NodeNetwork,
                agents: list[AgentProcess], pids: dict[str, int]) -> None:
    async with ApiClient(api) as client:
        for _ in range(300):
            try:
                ready = 0
                for n in network.nodes:
                    node = await client.get(NODES, n)
                    if node["spec"].get("podCIDR") and any(c["type"] == "Ready" and c["status"] == "True"
                                                           for c in node["status"].get("conditions", [])):
                        ready += 1
                if ready == len(network.nodes):
                    break
            except ApiError:
                pass
            await asyncio.sleep(0.2)
        n1, n2 = network.nodes
        pairs = [(f"p{i}", network.nodes[i % 2]) for i in range(args.pods)]
        t0, cpu0 = time.perf_counter(), cpu_snapshot(pids)
        lat = await start_pods(client, pairs, args.image, args.concurrency, args.rate)
        wall, cpu1 = time.perf_counter() - t0, cpu_snapshot(pids)
        pace = f"paced at {args.rate:g} pods/s" if args.rate else f"{args.concurrency} concurrent creates"
        print(f"pod start-up ({args.pods} pods, image {args.image}, 2 nodes, {pace}):")
        print(f"  created -> Running with IP: p50 {pct(lat, .5) * 1000:.0f} ms, p99 {pct(lat, .99) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms; all {args.pods} in {wall:.1f} s ({args.pods / wall:.1f} pods/s)")
        print(f"  agent RSS: {n1} {agents[0].rss_kib() / 1024:.1f} MiB, {n2} {agents[1].rss_kib() / 1024:.1f} MiB "
              f"({args.pods // 2} pods each)")
        print(f"  CPU ms per pod started: {cpu_per_pod(cpu0, cpu1, args.pods)} "
              f"(agents with their CNI plugins and runtime calls)")
        t0 = time.perf_counter()
        await delete_all(client)
        print(f"  delete of {args.pods} pods (stop, CNI DEL, netns, API delete): {time.perf_counter() - t0:.1f} s")

        if not args.full:
            return
        idle = agents[0].rss_kib()
        pairs = [(f"f{i}", n1) for i in range(args.full)]
        t0 = time.perf_counter()
        lat = await start_pods(client, pairs, args.image, args.concurrency)
        wall = time.perf_counter() - t0
        await asyncio.sleep(3)  # a few relists and status rounds at steady state
        print(f"full node ({args.full} pods on {n1}):")
        print(f"  created -> Running with IP: p50 {pct(lat, .5) * 1000:.0f} ms, p99 {pct(lat, .99) * 1000:.0f} ms; "
              f"all in {wall:.1f} s")
        print(f"  agent RSS: {agents[0].rss_kib() / 1024:.1f} MiB with {args.full} pods "
              f"(after the first round, with none: {idle / 1024:.1f} MiB)")
        await delete_all(client)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--full", type=int, default=110)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--rate", type=float, default=0.0, help="creates per second (0: unpaced)")
    p.add_argument("--image", default="busybox")
    p.add_argument("--runtimes", default="process,runc",
                   help="comma-separated: each gets the same run, one after the other (before/after)")
    p.add_argument("--network-policy", default="off",
                   help="comma-separated off/on: with on, each node's policy agent runs and is waited for")
    args = p.parse_args()
    for runtime in args.runtimes.split(","):
        for policy in args.network_policy.split(","):
            print(f"== container runtime: {runtime}, network policy agent: {policy}")
            run_once(args, runtime, policy == "on")


RUNTIME = ["process"]  # the runtime of the current run


def policy_agent(api: ApiServerProcess, tmp: Path, node: str, netns: str) -> tuple[subprocess.Popen, str]:
    """The node's NetworkPolicy agent, programming `netns` from outside it; (process, its URL)."""
    port = free_port()
    log = open(tmp / f"netpol-{node}.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.netpol", "--kubeconfig", str(kubeconfig_for(api, tmp, "netpol")),
         "--node-name", node, "--netns", netns, "--health-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc, f"http://127.0.0.1:{port}"


def run_once(args: argparse.Namespace, runtime: str, network_policy: bool = False) -> None:
    RUNTIME[0] = runtime
    tag = secrets.token_hex(2)
    network = NodeNetwork(tag, [f"b{tag}n1", f"b{tag}n2"])
    agents: list[AgentProcess] = []
    policy_agents: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="pod-startup-") as tmp, EtcdProcess() as etcd:
        api = start_apiserver(etcd.endpoint, Path(tmp), "--node-network", f"{SUBNET}.0/24")
        try:
            network.up()
            for node in network.nodes:
                kubeconfig = kubeconfig_for(api, Path(tmp), f"node:{node}")
                extra: list[str] = []
                if network_policy:
                    proc, url = policy_agent(api, Path(tmp), node, network.netns(node))
                    policy_agents.append(proc)
                    extra = ["--network-policy-agent", url]
                agents.append(AgentProcess(kubeconfig=kubeconfig, node=node, node_ip=network.ips[node],
                                           netns=network.netns(node), state_dir=Path(tmp) / node,
                                           runtime=runtime, extra=extra).start())
            assert etcd.pid and api.proc and all(a.proc for a in agents)
            pids = {"etcd": etcd.pid, "apiserver": api.proc.pid,
                    **{f"agent {a.node}": a.proc.pid for a in agents if a.proc}}
            asyncio.run(bench(args, api.config, network, agents, pids))
        finally:
            for a in agents:
                a.kill()
            for proc in policy_agents:
                stop_process(proc)
            network.down()
            api.stop()
            hoststate.unmount_under(Path(tmp))
            hoststate.remove_cgroups(network.nodes)

if __name__ == "__main__":
    main()
