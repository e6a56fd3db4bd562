"""The one health app of every service, with in-memory caches and readiness checks (no I/O)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from kubecore.controller.health import Health, add_health_routes, create_health_app


@dataclass
class FakeCache:
    name: str
    synced: bool

    def has_synced(self) -> bool:
        return self.synced


def checking(reason: str | None):
    async def check() -> str | None:
        return reason
    return check


@pytest.mark.parametrize("caches, reason, want", [
    ([], None, (200, "ok")),
    ([FakeCache("services", True)], None, (200, "ok")),
    ([FakeCache("services", False), FakeCache("pods", False), FakeCache("nodes", True)], None,
     (503, "caches not synced: pods, services")),
    ([FakeCache("services", False)], "rules not synced yet", (503, "caches not synced: services")),
    ([FakeCache("services", True)], "rules not synced yet", (503, "rules not synced yet")),
    ([], "not ready: etcd", (503, "not ready: etcd")),
], ids=["nothing-to-wait-for", "synced", "caches-first", "caches-before-check", "check", "check-only"])
async def test_readyz(caches, reason, want) -> None:
    app = create_health_app(Health(registry=CollectorRegistry(), informers=lambda: caches,
                                   ready=checking(reason)))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert (response.status, await response.text()) == want
        for path in ("/healthz", "/livez"):
            response = await client.get(path)
            assert (response.status, await response.text()) == (200, "ok")


async def test_metrics_and_routes_next_to_others() -> None:
    registry = CollectorRegistry()
    Counter("things", "things done", registry=registry).inc(3)
    app = create_health_app(Health(registry=registry))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        assert "things_total 3.0" in await response.text()

    from aiohttp import web

    async def version(request: web.Request) -> web.Response:
        return web.Response(text="v1")

    shared = web.Application()
    shared.router.add_get("/version", version)
    add_health_routes(shared, Health(registry=registry, ready=checking("not yet")))
    async with TestClient(TestServer(shared)) as client:
        assert (await client.get("/version")).status == 200
        assert (await client.get("/readyz")).status == 503
        assert "things_total 3.0" in await (await client.get("/metrics")).text()
