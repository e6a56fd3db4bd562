"""Health check node ports answered on real sockets (loopback), as kube-proxy answers them."""
from __future__ import annotations

import aiohttp
import pytest

from cluster.procs import free_port
from services.proxy.healthcheck import ServiceHealthServer, health_check_ports, local_ready_endpoints
from services.proxy.model import ServiceIndex
from tests.proxy.objects import endpoint, endpoint_slice, external, port, service, slice_port


async def get(port_: int) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port_}/healthz") as r:
        return r.status, dict(r.headers), await r.text()


def index(*eps) -> ServiceIndex:
    idx = ServiceIndex("node-a")
    svc = external(service("web", "10.96.0.9", [port(80, name="http", node_port=30080)], type_="LoadBalancer"),
                   lb_ips=["10.0.0.100"])
    svc["spec"].update(externalTrafficPolicy="Local", healthCheckNodePort=HC_PORT)
    idx.set_service(svc)
    idx.set_service(service("plain", "10.96.0.10", [port(80)]))
    idx.set_slice(endpoint_slice("web", list(eps), [slice_port(8080, name="http")]))
    return idx


HC_PORT = free_port()


async def test_answers_with_the_local_ready_endpoints_and_closes_with_the_service():
    server = ServiceHealthServer(host="127.0.0.1")
    try:
        ports = index(endpoint("10.244.1.2", node="node-a"), endpoint("10.244.1.3", node="node-a"),
                      endpoint("10.244.2.2", node="node-b"),
                      endpoint("10.244.1.4", ready=False, node="node-a")).ports()
        assert health_check_ports(ports) == {("default", "web"): HC_PORT}
        await server.sync(health_check_ports(ports), local_ready_endpoints(ports))
        status, headers, text = await get(HC_PORT)
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Load-Balancing-Endpoint-Weight"] == "2"
        assert text == ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n'
                        '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')

        # no endpoint on this node: 503, so the load balancer skips it
        ports = index(endpoint("10.244.2.2", node="node-b")).ports()
        await server.sync(health_check_ports(ports), local_ready_endpoints(ports))
        status, headers, text = await get(HC_PORT)
        assert status == 503 and headers["X-Load-Balancing-Endpoint-Weight"] == "0"
        assert '"localEndpoints": 0' in text

        # a proxy whose rules are not in place is not healthy either
        server.healthy = lambda: False
        ports = index(endpoint("10.244.1.2", node="node-a")).ports()
        await server.sync(health_check_ports(ports), local_ready_endpoints(ports))
        status, _, text = await get(HC_PORT)
        assert status == 503 and '"serviceProxyHealthy": false' in text

        # the Service goes: nothing listens any more
        await server.sync({}, {})
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(HC_PORT)
    finally:
        await server.close()
