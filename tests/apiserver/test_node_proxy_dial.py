"""The node proxy dials <InternalIP>:<--kubelet-port> and nothing else, against the real API
server: not the port a Node reports, and for a Node whose InternalIP is not a plain address
(stored before the API server checked it, written straight into etcd here) nowhere at all."""
from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from aiohttp import web

from cluster.procs import free_port
from services.apiserver.storage.store import encode
from tests.conftest import ApiServer, SessionPki, api_settings

pytestmark = pytest.mark.etcd

LOG = "/api/v1/namespaces/default/pods/{}/log"
EXEC = "/api/v1/namespaces/default/pods/{}/exec"


class Trap:
    """A TCP listener that only counts who connects to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Trap:
        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()
        self.server = await asyncio.start_server(connected, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def agent():
    """A stand-in node agent on a free loopback port: answers logs, records what it was asked."""
    seen: list[str] = []

    async def logs(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="from the agent\n")

    async def exec_(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"exitCode": 0, "stdout": "ran\n", "stderr": ""})

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", logs)
    app.router.add_post("/exec/{namespace}/{pod}/{container}", exec_)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=SessionPki.get().agent_ssl_context()).start()
    try:
        yield port, seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def trap():
    t = await Trap().start()
    try:
        yield t
    finally:
        await t.stop()


def put_in_etcd(endpoint: str, key: str, obj: dict) -> None:
    subprocess.run(["etcdctl", "--endpoints", endpoint, "put", key], input=encode(obj), check=True,
                   capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})


async def test_the_proxy_dials_the_internal_ip_at_the_servers_kubelet_port_only(etcd, agent, trap):
    agent_port, seen = agent
    server = await ApiServer(api_settings(etcd, kubelet_port=agent_port)).start()
    try:
        async with server.session() as http:
            async def post(path: str, body: dict) -> None:
                async with http.post(path, json=body) as r:
                    assert r.status == 201, await r.text()

            # a node that reports the trap as its kubelet port
            async with http.post("/api/v1/nodes", json={"metadata": {"name": "n1"}}) as r:
                assert r.status == 201
            async with http.patch("/api/v1/nodes/n1/status", json={"status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": trap.port}}}},
                    headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200, await r.text()
            # a node stored before InternalIPs were checked: its "address" names the trap
            put_in_etcd(etcd.endpoint, "/registry/nodes/n2", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n2", "uid": "u2", "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]},
                "status": {"addresses": [
                    {"type": "InternalIP", "address": f"127.0.0.1:{trap.port}/v3/kv/range?x#"},
                    {"type": "Hostname", "address": "n2"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": trap.port}}}})
            for name, node_name in (("on-n1", "n1"), ("on-n2", "n2")):
                await post("/api/v1/namespaces/default/pods", {"metadata": {"name": name}, "spec": {
                    "nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]}})

            async with http.get(LOG.format("on-n1")) as r:
                assert (r.status, await r.text()) == (200, "from the agent\n")
            async with http.post(EXEC.format("on-n1"), json={"command": ["true"]}) as r:
                assert r.status == 200 and (await r.json())["stdout"] == "ran\n"
            assert seen == ["/containerLogs/default/on-n1/c", "/exec/default/on-n1/c"]

            known = f"[{{InternalIP 127.0.0.1:{trap.port}/v3/kv/range?x#}} {{Hostname n2}}]"
            for method, path, body in (("GET", LOG.format("on-n2"), None),
                                       ("POST", EXEC.format("on-n2"), {"command": ["true"]})):
                async with http.request(method, path, json=body) as r:
                    status = await r.json()
                    assert r.status == 503, status
                    assert status["reason"] == "ServiceUnavailable"
                    assert status["message"] == f"no preferred addresses found; known addresses: {known}"
        assert trap.connections == 0
        assert len(seen) == 2
    finally:
        await server.stop()
