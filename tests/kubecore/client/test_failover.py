"""A client given several API servers fails over between them: a refused connection moves
any request to the next server at once; a request that broke after it was sent is not sent
again, and a 503 (the server's storage not answering) is not retried either, but both move the
client's next requests on. The healthy server is the real API server over real etcd."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest
from aiohttp import web

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.config import ClientConfig, load_kubeconfig, write_kubeconfig
from kubecore.client.rest import ApiClient, ApiUnavailable

pytestmark = pytest.mark.etcd


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


@contextlib.asynccontextmanager
async def plain_server(handler):
    """An HTTP server on loopback answering every request with `handler`."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def hanging_up_server():
    """A server that reads a request and closes the connection without answering; the
    requests it saw are counted."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_refused_server_is_skipped_for_every_verb_and_watch(apiserver):
    dead = f"https://127.0.0.1:{free_port()}"
    config = dataclasses.replace(apiserver.config, server=dead, more_servers=(apiserver.url,))
    async with ApiClient(config, timeout=10) as client:
        created = await client.create(R.SERVICES, service("failover"), "default")
        assert client.base_url == apiserver.url
        assert (await client.get(R.SERVICES, "failover", "default"))["metadata"]["uid"] == \
            created["metadata"]["uid"]
    # a fresh client watches through the living server too
    async with ApiClient(config, timeout=10) as client:
        events = client.watch(R.SERVICES, "default", field_selector="metadata.name=failover")
        first = await asyncio.wait_for(events.__anext__(), 10)
        await events.aclose()
        assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "failover")


async def test_all_servers_refusing_is_unavailable():
    first, second = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    async with ApiClient(ClientConfig(server=first, more_servers=(second,)), timeout=5) as client:
        with pytest.raises(ApiUnavailable, match="Cannot connect"):
            await client.get(R.SERVICES, "x", "default")


async def test_a_request_cut_after_sending_is_not_sent_again(apiserver):
    async with hanging_up_server() as (url, seen):
        config = dataclasses.replace(apiserver.config, server=url, more_servers=(apiserver.url,))
        async with ApiClient(config, timeout=10) as client:
            with pytest.raises(ApiUnavailable):
                await client.create(R.SERVICES, service("once"), "default")
            assert len(seen) == 1 and seen[0].startswith(b"POST ")
            with pytest.raises(ApiError) as err:  # the create never reached the real server
                await client.get(R.SERVICES, "once", "default")
            assert err.value.code == 404
            assert client.base_url == apiserver.url  # ... and the client moved on to it


async def test_a_503_moves_the_next_request_on(apiserver):
    answered = []

    async def unavailable(request: web.Request) -> web.Response:
        answered.append(request.method)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": "etcd is not answering", "reason": "ServiceUnavailable",
                                  "code": 503}, status=503)

    async with plain_server(unavailable) as url:
        config = dataclasses.replace(apiserver.config, server=url, more_servers=(apiserver.url,))
        async with ApiClient(config, timeout=10) as client:
            with pytest.raises(ApiError) as err:
                await client.create(R.SERVICES, service("later"), "default")
            assert err.value.code == 503 and answered == ["POST"]
            assert (await client.create(R.SERVICES, service("later"), "default"))["metadata"]["name"] == "later"
            assert answered == ["POST"]  # the client stays with the server that answers


def test_kubeconfig_lists_every_server_and_kubectl_reads_the_first(tmp_path: Path):
    ca = tmp_path / "ca.crt"
    ca.write_text("not read here\n")
    path = tmp_path / "config"
    write_kubeconfig(path, name="ha", ca_file=ca,
                     servers=["https://127.0.0.1:6443", "https://10.250.0.254:6443"])
    config = load_kubeconfig(path)
    assert config.server == "https://127.0.0.1:6443"
    assert config.more_servers == ("https://10.250.0.254:6443",)
    # one server: no extension at all
    write_kubeconfig(path, name="one", ca_file=ca, server="https://127.0.0.1:6443")
    assert "extensions" not in path.read_text() and load_kubeconfig(path).more_servers == ()


async def test_a_read_cut_after_sending_goes_to_the_next_server(apiserver):
    async with hanging_up_server() as (url, seen):
        config = dataclasses.replace(apiserver.config, server=url, more_servers=(apiserver.url,))
        async with ApiClient(config, timeout=10) as client:
            namespace = await client.get(R.NAMESPACES, "default")
            assert namespace["metadata"]["name"] == "default"
            # the hung-up server saw the read (aiohttp itself may try a read twice), the
            # answer came from the next server
            assert seen and all(request.startswith(b"GET ") for request in seen)
            assert client.base_url == apiserver.url
