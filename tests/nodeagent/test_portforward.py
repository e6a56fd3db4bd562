"""`kubectl port-forward` for real, with every kubectl installed side by side (1.27 ... 1.33):
up to 1.30 it upgrades to SPDY/3.1, from 1.31 it tunnels SPDY inside a WebSocket. Through the
API server to a node agent, which connects to the port inside the pod's network namespace.

The pod's server listens on the pod's loopback only (127.0.0.1:8080), so an answer proves the
connection was made inside the pod's namespace, not to its IP from the node.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.nodeagent.conftest import needs_netns
from tests.nodeagent.streaming_cluster import kubectl_binary, streaming_cluster

pytestmark = [needs_netns, pytest.mark.netns, pytest.mark.asyncio(loop_scope="module")]
VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(etcd_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("portforward")
    # /etc/hostname inside the container is the pod's: GET /hostname names the pod
    web = {"metadata": {"name": "web"}, "spec": {"containers": [{
        "name": "http", "image": "python",
        "command": ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/etc"]}]}}
    async with streaming_cluster(etcd_server, workdir, [web]) as c:
        yield c.server, c.kubeconfig, workdir


class PortForward:
    """A running `kubectl port-forward` and what it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = b""
        self.err = b""

    async def local_port(self, timeout: float = 20) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while (m := FORWARDING.search(self.out.decode(errors="replace"))) is None:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.returncode is not None:
                await self.stop()
                raise AssertionError(f"port-forward did not start: {self.out!r} {self.err!r}")
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(4096), left)
            except TimeoutError:
                continue
            if not chunk:
                await self.stop()
                raise AssertionError(f"port-forward ended: {self.out!r} {self.err!r}")
            self.out += chunk
        return int(m.group(1))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        rest, err = await self.proc.communicate()
        self.out += rest or b""
        self.err += err or b""


async def port_forward(kubeconfig: str, workdir: Path, version: str, *args: str) -> PortForward:
    binary = kubectl_binary(version)
    if binary is None:
        pytest.skip(f"kubectl {version} is not installed")
    proc = await asyncio.create_subprocess_exec(
        binary, "--kubeconfig", kubeconfig, "--cache-dir", str(workdir / f"cache-{version}"), "port-forward", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return PortForward(proc)


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=20)) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"kubectl-{v}" for v in VERSIONS])
async def test_port_forward_serves_concurrent_requests(cluster, version):
    server, kubeconfig, workdir = cluster
    pf = await port_forward(kubeconfig, workdir, version, "pod/web", ":8080")
    try:
        port = await pf.local_port()
        answers = await asyncio.gather(*(_get(port, "/hostname") for _ in range(5)))
        assert answers == [(200, "web\n")] * 5
        # a larger body comes back whole, one after another on the same forward
        status, body = await _get(port, "/services")
        assert status == 200 and body == Path("/etc/services").read_text()
    finally:
        await pf.stop()
    assert pf.proc.returncode is not None
    assert pf.out.count(f"Handling connection for {port}".encode()) == 6, pf.out


@pytest.mark.parametrize("version", ("1.30", "1.33"), ids=["spdy", "websocket"])
async def test_port_forward_to_a_closed_port_reports_on_the_error_stream(cluster, version):
    server, kubeconfig, workdir = cluster
    pf = await port_forward(kubeconfig, workdir, version, "pod/web", ":9")
    try:
        port = await pf.local_port()
        with pytest.raises(aiohttp.ClientError):
            await _get(port, "/")
        await asyncio.sleep(0.5)
    finally:
        await pf.stop()
    err = pf.err.decode().replace('\\"', '"')  # kubectl 1.31+ logs it quoted, as a klog field
    assert "error: lost connection to pod" in err, err
    assert re.search(r"an error occurred forwarding \d+ -> 9: error forwarding port 9 to pod [0-9a-f]+, uid : "
                     r"failed to execute portforward in network namespace \"/run/netns/mc-[^\"]+\": failed to "
                     r"connect to localhost:9 inside namespace .*IPv4: dial tcp4 127\.0\.0\.1:9: connect: "
                     r"connection refused", err), err


async def test_port_forward_errors_before_the_upgrade(cluster):
    server, kubeconfig, workdir = cluster
    pf = await port_forward(kubeconfig, workdir, "1.33", "pod/nope", ":8080")
    await asyncio.wait_for(pf.proc.wait(), 20)
    await pf.stop()
    assert pf.proc.returncode == 1
    assert pf.err.decode().strip() == 'Error from server (NotFound): pods "nope" not found'
    # no upgrade at all: kube's 400
    async with server.session() as http, http.post(f"{server.url}/api/v1/namespaces/default/pods/web/portforward") as r:
        body = await r.json()
    assert r.status == 400 and body["message"] == "Upgrade request required", body
