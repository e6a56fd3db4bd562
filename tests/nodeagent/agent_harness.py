"""Scaffolding for the agent's end-to-end tests: a scratch node network and agent processes.

The "network" is a namespace holding a bridge; each node is a namespace whose `eth0` (a veth
whose other end is on the bridge) carries the node's InternalIP. Nothing is created in the root
namespace. The agents run as processes of the test (in the root namespace, where the in-process
API server listens on loopback) with `--host-netns` pointing at their node's namespace, so the
CNI plugins, routes, probes and the agent's port all live in the node. The API server reaches
the agents' ports from the network namespace (`NodeProxy.dial_netns`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cluster import hoststate, nodeimages
from cluster.procs import stop_process
from services.nodeagent import procfs
from services.nodeagent.oci.store import ContentStore
from tests.conftest import SessionPki

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.250.0"


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def delete_netns(name: str) -> None:
    path = f"/run/netns/{name}"
    for pid in procfs.pids_in_netns(path):
        procfs.signal_pid(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


class NodeNetwork:
    def __init__(self, tag: str, nodes: list[str]) -> None:
        self.net = f"mc-{tag}-net"
        self.nodes = nodes
        self.ips = {n: f"{SUBNET}.{11 + i}" for i, n in enumerate(nodes)}

    def netns(self, node: str) -> str:
        return f"mc-{node}-node"

    def up(self) -> NodeNetwork:
        sh("ip", "netns", "add", self.net)
        sh("ip", "-n", self.net, "link", "set", "lo", "up")
        sh("ip", "-n", self.net, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.net, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
        sh("ip", "-n", self.net, "link", "set", "br0", "up")
        for i, node in enumerate(self.nodes):
            ns = self.netns(node)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.net, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.net, "link", "set", f"v{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.ips[node]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        return self

    def down(self) -> None:
        names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        for node in self.nodes:  # pod sandboxes first, then the node, then the network
            for ns in names:
                if ns.startswith(f"mc-{node}-") and ns != self.netns(node):
                    delete_netns(ns)
            delete_netns(self.netns(node))
        delete_netns(self.net)

    def run_in(self, node: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns(node)}", "--", *argv],
                              capture_output=True, text=True, timeout=timeout)


class AgentProcess:
    """`python -m services.nodeagent` for one node, killed by its PID."""

    def __init__(self, *, kubeconfig: Path, node: str, node_ip: str, netns: str, state_dir: Path,
                 port: int = 10250, extra: list[str] | None = None, runtime: str = "process") -> None:
        self.node, self.port, self.netns = node, port, netns
        self.runtime = runtime
        self.state_dir = state_dir
        self.log_path = state_dir.parent / f"agent-{node}.log"
        self.args = [sys.executable, "-m", "services.nodeagent", "--kubeconfig", str(kubeconfig), "--node-name", node,
                     "--node-ip", node_ip, "--state-dir", str(state_dir), "--cni-conf-dir",
                     str(state_dir / "cni-conf"), "--cni-bin-dir", "/usr/lib/cni", "--port", str(port),
                     "--host-netns", f"/run/netns/{netns}", "--heartbeat-interval", "2",
                     "--backoff-base", "0.5", "--backoff-max", "4", "--relist-interval", "0.2",
                     "--log-level", "INFO", "--healthz-port", "0",
                     *SessionPki.get().agent_flags(node, node_ip), "--container-runtime", runtime,
                     *(extra or [])]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        if self.runtime != "process":  # the default images in the node's store, as `cluster up` loads them
            store = ContentStore(self.state_dir / "images")
            for built in nodeimages.build_all():
                store.import_archive(built.archive)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=15, sig=sig)

    def remove_leftovers(self) -> None:
        """What an OCI runtime's pods leave once the agent and the pod namespaces (their
        processes) are gone: the sandboxes' mounts and the node's cgroups, as `cluster down`."""
        if self.runtime != "process":
            hoststate.unmount_under(self.state_dir)
            hoststate.remove_cgroups([self.node])

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def http_get_in(network: NodeNetwork, node: str, url: str) -> str:
    """GET `url` from inside the node's namespace (where pod IPs are reachable)."""
    out = network.run_in(node, "curl", "-sS", "--max-time", "5", url)
    if out.returncode != 0:
        raise AssertionError(f"curl {url} in {node}: {out.stderr}")
    return out.stdout


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


__all__ = ["NodeNetwork", "AgentProcess", "http_get_in", "wait_until", "urllib"]
