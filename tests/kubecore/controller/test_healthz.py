"""/healthz, /livez and /readyz with named checks, in the bytes of k8s.io/apiserver's healthz
handlers (in-memory checks, no I/O)."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from kubecore.controller.health import Health, create_health_app
from kubecore.controller.healthz import NamedChecks, always_ok


async def failing() -> str | None:
    return "connection refused"


def app(etcd_ok: bool = True):
    live = [("ping", always_ok), ("log", always_ok), ("etcd", always_ok if etcd_ok else failing)]
    named = NamedChecks(livez=live, readyz=[*live, ("informer-sync", always_ok)])
    return create_health_app(Health(registry=CollectorRegistry(), named=named))


CASES = [
    ("/readyz", True, 200, "ok"),
    ("/livez", True, 200, "ok"),
    ("/healthz", True, 200, "ok"),
    ("/readyz?verbose", True, 200,
     "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]informer-sync ok\nreadyz check passed\n"),
    ("/livez?verbose=1", True, 200, "[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n"),
    ("/healthz?verbose", True, 200, "[+]ping ok\n[+]log ok\n[+]etcd ok\nhealthz check passed\n"),
    ("/readyz?verbose&exclude=etcd&exclude=nope", False, 200,
     "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n[+]informer-sync ok\n"
     'warn: some health checks cannot be excluded: no matches for "nope"\nreadyz check passed\n'),
    ("/readyz", False, 500,
     "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n"),
    ("/livez", False, 500, "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\nlivez check failed\n"),
    ("/readyz/etcd", True, 200, "ok"),
    ("/readyz/etcd", False, 500, "internal server error: connection refused\n"),
    ("/livez/ping", False, 200, "ok"),
    ("/readyz/informer-sync", True, 200, "ok"),
    ("/livez/informer-sync", True, 404, "404 page not found\n"),
    ("/readyz/nope", True, 404, "404 page not found\n"),
]


@pytest.mark.parametrize("path,etcd_ok,status,body", [c for c in CASES],
                         ids=[f"{c[0]}-{'ok' if c[1] else 'down'}" for c in CASES])
async def test_named_checks(path, etcd_ok, status, body) -> None:
    async with TestClient(TestServer(app(etcd_ok))) as client:
        response = await client.get(path)
        assert (response.status, await response.text()) == (status, body)
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_without_named_checks_the_sub_paths_are_not_served() -> None:
    async with TestClient(TestServer(create_health_app(Health(registry=CollectorRegistry())))) as client:
        assert (await client.get("/readyz/etcd")).status == 404
        response = await client.get("/readyz?verbose")
        assert (response.status, await response.text()) == (200, "ok")
