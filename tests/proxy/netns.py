"""Throw-away network namespaces, veth links and processes for the real-kernel tests.

Nothing here touches the root namespace's rules, routes or sysctls: veth
pairs are created directly inside their namespaces (`ip link add ... netns`),
and every other command runs through `ip netns exec` / `ip -n`.  `close()`
kills the processes it started (by PID) and deletes the namespaces, which
also deletes their interfaces; it runs from fixtures' finally blocks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence

from cluster.procs import stop_process


def netns_supported() -> str | None:
    """None if these tests can run here, else the reason to skip."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "iptables-save", "iptables-restore", "conntrack"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


class NetnsLab:
    """Creates namespaces named `mcproxy-<random>-<role>` and cleans them all up."""

    def __init__(self) -> None:
        self.prefix = "mcproxy-" + uuid.uuid4().hex[:8]
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[str]] = []

    def add_netns(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.exec(name, ["ip", "link", "set", "lo", "up"])
        return name

    def exec(self, ns: str, argv: Sequence[str], *, input: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], input=input, check=check)

    def link(self, ns_a: str, if_a: str, addr_a: str, ns_b: str, if_b: str, addr_b: str) -> None:
        """A veth pair between two of our namespaces, both ends addressed and up."""
        run(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b])
        for ns, ifname, addr in ((ns_a, if_a, addr_a), (ns_b, if_b, addr_b)):
            run(["ip", "-n", ns, "addr", "add", addr, "dev", ifname])
            run(["ip", "-n", ns, "link", "set", ifname, "up"])

    def spawn(self, ns: str, code: str, *args: str) -> subprocess.Popen[str]:
        """Start `python -c code` inside `ns`; waits for it to print its first line."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", "-c", code, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.kill()
            raise RuntimeError(f"process in {ns} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        return proc

    def close(self) -> None:
        for proc in self.processes:
            stop_process(proc, timeout=5)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()
