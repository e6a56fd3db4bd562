"""pods/log?follow=true through the API server process, to a stand-in for the node agent
(an HTTP server that streams a line and then nothing, as a quiet container's log does)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.conftest import SessionPki


async def test_a_followed_log_is_let_go_when_its_client_leaves(apiserver_process):
    # The API server process as it runs in a cluster (aiohttp's run_app: a handler is not
    # cancelled when its client disconnects). A client that stops following a quiet log
    # must not leave the server holding the connection to the node agent until the
    # container ends.
    upstream_closed = asyncio.Event()
    container_ends = asyncio.Event()

    async def container_logs(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(b"started\n")
        try:
            await container_ends.wait()  # the container is quiet from now on
        except asyncio.CancelledError:
            upstream_closed.set()  # the API server closed the connection
            raise
        return resp

    agent = web.Application()
    agent.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    runner = web.AppRunner(agent, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=SessionPki.get().agent_ssl_context()).start()
    try:
        async with ApiClient(apiserver_process.config) as client:
            await client.create(R.NODES, {"metadata": {"name": "n1"}})
            await client.patch(R.NODES, "n1", {"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}, subresource="status")
            await client.create(R.PODS, {"metadata": {"name": "web"}, "spec": {
                "nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}, "default")
        async with apiserver_process.session() as session:
            async with session.get("/api/v1/namespaces/default/pods/web/log",
                                   params={"follow": "true"}) as resp:
                assert resp.status == 200
                assert await resp.content.readline() == b"started\n"
        # the client has left (the session closed its connection)
        await asyncio.wait_for(upstream_closed.wait(), 5)
    finally:
        container_ends.set()
        await runner.cleanup()
