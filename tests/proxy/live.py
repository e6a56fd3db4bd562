"""The proxy as its own process (``python -m services.proxy``) against a real API server.

Two ways to run it, both only touching namespaces a `NetnsLab` created:

- ``--netns NAME`` from the root namespace: it reaches the API server on loopback and runs
  its iptables commands through ``ip netns exec``;
- inside the namespace (``ip netns exec NAME python -m services.proxy``, as the cluster runs
  it with nsenter), programming its own tables. The namespace's loopback cannot reach the
  API server, so a relay inside it forwards 127.0.0.1:PORT to the API server's Unix socket
  (path-named Unix sockets work across network namespaces). No root-namespace
  interface, address or route is added.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cluster.procs import free_port, stop_process
from tests.proxy.netns import NetnsLab

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CIDR = "10.244.0.0/16"

RELAY = r"""
import asyncio, sys
listen_port, unix_path = int(sys.argv[1]), sys.argv[2]

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def serve(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_unix_connection(unix_path)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

BACKEND = r"""
import http.server, sys
name = sys.argv[1]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
print("ready", flush=True)
server.serve_forever()
"""

# Requests the service over and over until a line arrives on stdin, then prints a summary.
STEADY_CLIENT = r"""
import json, socket, sys, threading, time
ip, port = sys.argv[1], int(sys.argv[2])
stop = threading.Event()
counts = {"ok": 0, "failed": 0}
errors = []

def loop():
    while not stop.is_set():
        try:
            with socket.create_connection((ip, port), timeout=1) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
            if data.startswith(b"HTTP/1.0 200"):
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                errors.append(repr(data[:40]))
        except OSError as exc:
            counts["failed"] += 1
            errors.append(repr(exc))
        time.sleep(0.005)

thread = threading.Thread(target=loop)
thread.start()
print("ready", flush=True)
sys.stdin.readline()
stop.set()
thread.join()
print(json.dumps({**counts, "errors": errors[:5]}), flush=True)
"""


class ProxyProcess:
    """``python -m services.proxy`` for node-a; `inside` runs it in `netns` itself."""

    def __init__(self, lab: NetnsLab, netns: str, kubeconfig: Path, log_path: Path, *,
                 inside: bool = False, min_sync_period: float = 0.1,
                 sync_period: float = 30.0, apiserver: str | None = None, mode: str = "iptables") -> None:
        self.lab = lab
        self.netns = netns
        self.inside = inside
        self.health_port = free_port()
        argv = [sys.executable, "-m", "services.proxy", "--kubeconfig", str(kubeconfig),
                *(["--apiserver", apiserver] if apiserver else []),
                "--node-name", "node-a", "--cluster-cidr", CLUSTER_CIDR,
                "--health-port", str(self.health_port),
                "--min-sync-period", str(min_sync_period), "--sync-period", str(sync_period),
                "--proxy-mode", mode, "--log-level", "DEBUG"]
        self.argv = ["ip", "netns", "exec", netns, *argv] if inside else [*argv, "--netns", netns]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProxyProcess:
        with open(self.log_path, "ab") as log:
            # `ip netns exec` execs the program, so this PID is the proxy's own.
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def health(self, path: str) -> int | None:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        if self.inside:
            out = self.lab.exec(self.netns, ["curl", "-s", "-o", "/dev/null", "-m", "2",
                                             "-w", "%{http_code}", url], check=False).stdout
            return int(out) if out.isdigit() and out != "000" else None
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Async: the in-process API server shares the test's event loop."""
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.health, "/readyz") != 200:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, f"proxy not ready: {self.log()}"
            await asyncio.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM; the exit status, or None if it had to be killed."""
        return stop_process(self.proc, timeout=15) if self.proc is not None else None


def run_cleanup(netns: str, *, inside: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "services.proxy", "--cleanup"]
    argv = ["ip", "netns", "exec", netns, *argv] if inside else [*argv, "--netns", netns]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def saved_rules(lab: NetnsLab, netns: str) -> str:
    """iptables-save of the namespace without comments and packet counters."""
    text = lab.exec(netns, ["iptables-save"]).stdout
    return "".join(
        re.sub(r"\[\d+:\d+\]$", "[0:0]", line) + "\n"
        for line in text.splitlines() if not line.startswith("#")
    )


def nft_table(lab: NetnsLab, netns: str) -> str:
    """`nft list table ip kube-proxy` ("" when there is no such table)."""
    return lab.exec(netns, ["nft", "list", "table", "ip", "kube-proxy"], check=False).stdout


def nft_chains(lab: NetnsLab, netns: str) -> set[str]:
    """The chain names of our nftables table."""
    return {line.split()[1] for line in nft_table(lab, netns).splitlines() if line.strip().startswith("chain ")}


def nft_blocks(table: str) -> list[str]:
    """The table's chains, maps and sets as sorted text blocks: the kernel lists them in
    creation order, which a restart (recreating the base chains) changes."""
    blocks: list[list[str]] = []
    for line in table.splitlines():
        if line.startswith("\t") and not line.startswith("\t\t") and line.strip() != "}":
            blocks.append([])
        if blocks and line.startswith("\t"):
            blocks[-1].append(line)
    return sorted("\n".join(b) for b in blocks)


def programmed(lab: NetnsLab, netns: str, mode: str) -> str:
    """What the proxy put into the kernel in `mode`, as text to compare."""
    return "\n".join(nft_blocks(nft_table(lab, netns))) if mode == "nftables" else saved_rules(lab, netns)


def kube_chains(lab: NetnsLab, netns: str) -> set[str]:
    return {
        line[1:].split()[0] for line in saved_rules(lab, netns).splitlines()
        if line.startswith(":KUBE-")
    }


async def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll `predicate` (in a thread, leaving the loop to the API server) until true;
    returns the seconds it took."""
    started = time.monotonic()
    while not await asyncio.to_thread(predicate):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
