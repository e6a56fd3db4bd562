"""An API server, one node agent in a scratch node network, and some pods, for the tests of
the streaming paths (port-forward, logs, attach, cp) with the real kubectl binaries.

kubectl releases 1.27 ... 1.33 may be installed side by side as `kubectl.<minor>` (on PATH or
beside the `kubectl` that is); `kubectl_binary` finds them.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubecore.api.resources import NODES, PODS
from kubecore.client.rest import ApiClient
from tests.conftest import ApiServer, api_settings, wipe_etcd
from tests.nodeagent.agent_harness import AgentProcess, NodeNetwork


def kubectl_binary(version: str | None = None) -> str | None:
    """`kubectl.<version>` on PATH, or beside the `kubectl` that is (the Cloud SDK installs them so)."""
    if version is None:
        return shutil.which("kubectl")
    found = shutil.which(f"kubectl.{version}")
    default = shutil.which("kubectl")
    if found is None and default is not None:
        found = shutil.which(f"kubectl.{version}", path=str(Path(default).resolve().parent))
    return found


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.2)


def running(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


@dataclass
class StreamCluster:
    server: ApiServer
    network: NodeNetwork
    agent: AgentProcess
    node: str
    workdir: Path
    kubeconfig: str

    async def kubectl(self, *args: str, version: str | None = None, stdin: bytes | None = None,
                      timeout: float = 30) -> tuple[int, str, str]:
        binary = kubectl_binary(version)
        if binary is None:
            pytest.skip(f"kubectl {version or ''} is not installed")
        argv = [binary, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.workdir / f"cache-{version}"), *args]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=self.workdir)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"kubectl {' '.join(args)} hung for {timeout}s") from None
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def wait_running(self, name: str, timeout: float = 30) -> dict[str, Any]:
        async with ApiClient(self.server.config) as client:
            async def up() -> dict[str, Any] | None:
                pod = await client.get(PODS, name, "default")
                return pod if running(pod) else None
            try:
                result: dict[str, Any] = await eventually(up, timeout, f"pod {name} running")
                return result
            except AssertionError:
                pod = await client.get(PODS, name, "default")
                raise AssertionError(f"{pod.get('status')}\n{self.agent.log()[-3000:]}") from None


@contextlib.asynccontextmanager
async def streaming_cluster(etcd_server: Any, workdir: Path, pods: list[dict[str, Any]]
                            ) -> AsyncIterator[StreamCluster]:
    """The cluster with `pods` (bound to its node) created; each waited for until it runs."""
    wipe_etcd(etcd_server.endpoint)
    server = await ApiServer(api_settings(etcd_server)).start()
    tag = secrets.token_hex(2)
    network = NodeNetwork(tag, [f"t{tag}s1"])
    agent = None
    try:
        network.up()
        node = network.nodes[0]
        server.state.nodes.dial_netns = f"/run/netns/{network.net}"
        kubeconfig = server.kubeconfig(workdir / f"{node}.kubeconfig", f"system:node:{node}", ("system:nodes",))
        agent = AgentProcess(kubeconfig=kubeconfig, node=node, node_ip=network.ips[node], netns=network.netns(node),
                             state_dir=workdir / node).start()
        async with ApiClient(server.config) as client:
            async def node_ready() -> bool:
                assert agent is not None and agent.alive(), agent.log() if agent else ""
                try:
                    n = await client.get(NODES, node)
                except Exception:
                    return False
                conds = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
                return conds.get("Ready") == "True" and bool(n["spec"].get("podCIDR"))
            await eventually(node_ready, 30, f"node {node} Ready")
            for pod in pods:
                bound = {**pod, "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, **pod["spec"]}}
                await client.create(PODS, bound, "default")
        admin = str(server.kubeconfig(workdir / "admin.kubeconfig"))
        cluster = StreamCluster(server, network, agent, node, workdir, admin)
        for pod in pods:
            await cluster.wait_running(pod["metadata"]["name"])
        yield cluster
    finally:
        if agent is not None:
            agent.kill()
        network.down()
        await server.stop()
