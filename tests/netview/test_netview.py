"""The live picture's server against a real API server: the picture from watches, a new pod in
the event stream within a second of its creation (no polling), and traces asked wrongly
answered with a Status, not a traceback."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.netview.app import NetView, create_app

pytestmark = pytest.mark.etcd


async def _events(session: aiohttp.ClientSession, url: str):
    """The pictures the event stream sends, as they come."""
    async with session.get(url) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        data = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                yield json.loads(data)
                data = ""


def _pod(name: str, node: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}


async def test_the_picture_follows_the_cluster_live(apiserver):
    async with ApiClient(apiserver.config) as client:
        await client.create(R.NODES, {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"}})
        await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        await client.create(R.PODS, _pod("first", "n1"))
        view = NetView(client)
        await view.factory.start()
        server = TestServer(create_app(view))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(100):
                    async with session.get(server.make_url("/readyz")) as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("never ready")
                async with session.get(server.make_url("/api/picture")) as r:
                    pic = await r.json()
                assert pic["synced"] and [n["name"] for n in pic["nodes"]] == ["n1"]
                assert [p["name"] for p in pic["nodes"][0]["pods"]] == ["first"]
                assert "default/web" in {f"{s['namespace']}/{s['name']}" for s in pic["services"]}

                stream = _events(session, str(server.make_url("/api/events")))
                first = await anext(stream)
                assert [p["name"] for p in first["nodes"][0]["pods"]] == ["first"]
                created = time.monotonic()
                await client.create(R.PODS, _pod("second", "n1"))
                async with asyncio.timeout(1.0):  # the goal: a new pod on the page within a second
                    while True:
                        pic = await anext(stream)
                        if "second" in [p["name"] for p in pic["nodes"][0]["pods"]]:
                            break
                assert time.monotonic() - created < 1.0
                await stream.aclose()

                for query, message in [("", "give from=<namespace>/<pod> and to=<destination>"),
                                       ("?from=default/first&to=svc/web", "'svc/web': a Service destination is "
                                                                          "svc/<name>:<port>"),
                                       ("?from=default/nobody&to=svc/web:80",
                                        'pods "nobody" not found in namespace default')]:
                    async with session.get(server.make_url("/api/trace" + query)) as r:
                        assert r.status == 400
                        assert (await r.json())["message"] == message
                async with session.get(server.make_url("/api/trace?from=default/first&to=svc/web:80")) as r:
                    account = await r.json()
                assert account["ok"] is False and account["summary"] == "the source pod has no IP yet (not running?)"
                assert account["warnings"] and account["warnings"][0].startswith("node n1:")
                async with session.get(server.make_url("/")) as r:
                    assert r.status == 200 and "EventSource(\"/api/events\")" in await r.text()
        finally:
            await server.close()
            await view.factory.stop()
