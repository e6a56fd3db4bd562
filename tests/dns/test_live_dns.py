"""``python -m services.dns`` against a real API server (over a real etcd), asked with ``dig``.

The API server runs in the test's event loop; the DNS server is a separate process watching
it through kubecore's informers.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.etcd import EtcdProcess
from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.conftest import ApiServer, SessionPki, api_settings

from .live import DnsProcess, a_records, dig, eventually, status_of

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig not installed")

FQDN = "mysvc.default.svc.cluster.local"


@pytest.fixture
def dns(apiserver: ApiServer, tmp_path: Path) -> Iterator[DnsProcess]:
    process = DnsProcess(apiserver.kubeconfig(tmp_path / "dns.kubeconfig", "system:serviceaccount:kube-system:coredns"),
                         tmp_path / "dns.log").start()
    try:
        yield process
    finally:
        assert process.stop() == 0, "SIGTERM ends the DNS process cleanly"


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.config) as api:
        yield api


def headless_slice(name: str, endpoints: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-abcde", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


async def test_service_is_answered_until_deleted(
    dns: DnsProcess, client: ApiClient
) -> None:
    await eventually(lambda: dig(dns.port, FQDN), lambda out: status_of(out) == "NXDOMAIN")
    assert dns.health("/readyz") == 200

    created = await client.create(
        R.SERVICES, {"metadata": {"name": "mysvc"}, "spec": {"ports": [{"port": 80}]}}, "default"
    )
    cluster_ip = created["spec"]["clusterIP"]
    out = await eventually(lambda: dig(dns.port, FQDN), lambda out: status_of(out) == "NOERROR")
    assert a_records(out, FQDN) == {cluster_ip}
    short = await dig(dns.port, "+short", "mysvc.default.svc")
    assert short.split() == [cluster_ip]
    reverse = await dig(dns.port, "+short", "-x", cluster_ip)
    assert reverse.split() == [FQDN + "."]

    await client.delete(R.SERVICES, "mysvc", "default")
    out = await eventually(lambda: dig(dns.port, FQDN), lambda out: status_of(out) == "NXDOMAIN")
    assert a_records(out, FQDN) == set()
    # The namespace still holds the kubernetes service, so it stays a known name.
    assert status_of(await dig(dns.port, "kubernetes.default.svc.cluster.local")) == "NOERROR"


async def test_headless_service_answers_ready_endpoints(
    dns: DnsProcess, client: ApiClient
) -> None:
    name = "web.default.svc.cluster.local"
    await client.create(
        R.SERVICES,
        {"metadata": {"name": "web"},
         "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}},
        "default",
    )
    await client.create(
        R.ENDPOINTSLICES,
        headless_slice("web", [("10.244.1.5", True), ("10.244.2.7", True), ("10.244.3.9", False)]),
        "default",
    )
    out = await eventually(lambda: dig(dns.port, name), lambda out: bool(a_records(out, name)))
    assert a_records(out, name) == {"10.244.1.5", "10.244.2.7"}
    assert status_of(out) == "NOERROR"

    # The not-ready endpoint turns ready, one ready endpoint goes away.
    current = await client.get(R.ENDPOINTSLICES, "web-abcde", "default")
    current["endpoints"] = [
        {"addresses": ["10.244.2.7"], "conditions": {"ready": True}},
        {"addresses": ["10.244.3.9"], "conditions": {"ready": True}},
    ]
    await client.replace(R.ENDPOINTSLICES, current)
    out = await eventually(
        lambda: dig(dns.port, name),
        lambda out: a_records(out, name) == {"10.244.2.7", "10.244.3.9"},
    )

    await client.delete(R.ENDPOINTSLICES, "web-abcde", "default")
    out = await eventually(lambda: dig(dns.port, name), lambda out: not a_records(out, name))
    assert status_of(out) == "NOERROR", "the headless service exists, with no ready addresses"


async def test_servfail_until_the_api_server_is_listed(etcd: EtcdProcess, tmp_path: Path) -> None:

    port = free_port()
    pki = SessionPki.get()
    kubeconfig = pki.kubeconfig(tmp_path / "dns.kubeconfig", f"https://127.0.0.1:{port}")
    dns = DnsProcess(kubeconfig, tmp_path / "dns.log").start()
    apiserver: ApiServer | None = None
    try:
        # Nothing listens on the API server's port yet: no list, so no answer is trusted.
        for _ in range(3):
            assert status_of(await dig(dns.port, FQDN)) == "SERVFAIL"
            assert status_of(await dig(dns.port, "nothing.default.svc.cluster.local")) == "SERVFAIL"
        assert dns.health("/readyz") == 503
        assert dns.health("/healthz") == 200

        apiserver = await ApiServer(api_settings(etcd, port=port)).start()
        async with ApiClient(apiserver.config) as client:
            created = await client.create(
                R.SERVICES, {"metadata": {"name": "mysvc"}, "spec": {"ports": [{"port": 80}]}},
                "default",
            )
        # The reflector retries with a backoff capped at 5 s.
        out = await eventually(
            lambda: dig(dns.port, FQDN), lambda out: status_of(out) != "SERVFAIL", timeout=15
        )
        assert a_records(out, FQDN) == {created["spec"]["clusterIP"]}
        assert dns.health("/readyz") == 200
        assert status_of(await dig(dns.port, "nothing.default.svc.cluster.local")) == "NXDOMAIN"
    finally:
        assert dns.stop() == 0
        if apiserver is not None:
            await apiserver.stop()
