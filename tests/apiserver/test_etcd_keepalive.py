"""The API server's etcd connection on a network that goes silent without closing it (a NAT
entry dropped, a peer machine gone without a FIN): gRPC keepalive pings notice, the
connection is replaced and the watch caches resume from their revision."""
from __future__ import annotations

import asyncio
import contextlib

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.conftest import ApiServer, api_settings


class SilentableProxy:
    """A TCP forwarder to etcd. `silence()` makes the connections open at that moment carry
    nothing more in either direction while staying open, as a dead path does; connections
    made afterwards are forwarded as usual."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.port = free_port()
        self.connections: list[dict] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> SilentableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    def silence(self) -> int:
        for conn in self.connections:
            conn["silent"] = True
        return len(self.connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        conn = {"silent": False, "writers": (writer, up_writer)}
        self.connections.append(conn)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if not conn["silent"]:  # silent: the bytes are lost on the way
                        dst.write(data)
                        await dst.drain()
        for task in (asyncio.create_task(pump(reader, up_writer)),
                     asyncio.create_task(pump(up_reader, writer))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in self.connections:
            for w in conn["writers"]:
                w.close()


async def test_a_silent_etcd_connection_is_replaced_and_the_caches_resume(etcd):
    proxy = await SilentableProxy(etcd.endpoint).start()
    via_proxy = api_settings(etcd, etcd_keepalive_time=5.0, etcd_keepalive_timeout=2.0)
    via_proxy.etcd_endpoints = [proxy.endpoint]
    behind = await ApiServer(via_proxy).start()
    direct = await ApiServer(api_settings(etcd)).start()
    try:
        async with ApiClient(behind.config) as b, ApiClient(direct.config) as d:
            await d.create(R.SERVICES, {"metadata": {"name": "before"},
                                        "spec": {"ports": [{"port": 80}]}})
            for _ in range(100):  # the server behind the proxy sees it through its watch
                listed = (await b.list(R.SERVICES, "default", resource_version="0"))[0]
                if "before" in {s["metadata"]["name"] for s in listed}:
                    break
                await asyncio.sleep(0.05)
            assert proxy.silence() >= 1
            # a change made elsewhere must reach the silenced server's cache once it has
            # given up the dead connection (5 s without data + a 2 s unanswered ping)
            await d.create(R.SERVICES, {"metadata": {"name": "after"},
                                        "spec": {"ports": [{"port": 80}]}})
            seen = set()
            for _ in range(300):
                cached, _ = await b.list(R.SERVICES, "default", resource_version="0")
                seen = {s["metadata"]["name"] for s in cached}
                if "after" in seen:
                    break
                await asyncio.sleep(0.1)
            assert "after" in seen, "the watch cache never left the silent connection"
            # and it writes again
            await b.create(R.SERVICES, {"metadata": {"name": "written-behind"},
                                        "spec": {"ports": [{"port": 80}]}})
        async with behind.session() as s:
            async with s.get("/readyz") as r:
                assert r.status == 200
    finally:
        await direct.stop()
        await behind.stop()
        await proxy.stop()
