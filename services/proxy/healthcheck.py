"""Health check node ports: how an external load balancer learns which nodes have endpoints of
an `externalTrafficPolicy: Local` Service (kube-proxy's pkg/proxy/healthcheck/service_health.go).

For each such Service the API server allocated `spec.healthCheckNodePort`; every node's proxy
listens on it and answers any GET with the Service's name and how many of its ready endpoints
run on this node: 200 when there is at least one (and the proxy's rules are in place), 503
otherwise, so the load balancer sends traffic only to nodes that keep it local. The body and
headers are kube-proxy's, byte for byte.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from services.proxy.model import ServiceKey, ServicePort

log = logging.getLogger(__name__)


def health_check_ports(ports: Mapping[ServiceKey, tuple[ServicePort, ...]]) -> dict[ServiceKey, int]:
    """Service -> its health check node port, for the Services that have one."""
    out: dict[ServiceKey, int] = {}
    for key, group in ports.items():
        for sp in group:
            if sp.health_check_node_port is not None:
                out[key] = sp.health_check_node_port
    return out


def local_ready_endpoints(ports: Mapping[ServiceKey, tuple[ServicePort, ...]]) -> dict[ServiceKey, int]:
    """Service -> how many of its ready endpoints run on this node (kube-proxy's
    LocalReadyEndpoints; an endpoint behind several ports counts once)."""
    out: dict[ServiceKey, int] = {}
    for key, group in ports.items():
        ips = {ep.ip for sp in group for ep in sp.endpoints if ep.is_local and ep.ready}
        if ips:
            out[key] = len(ips)
    return out


def body(key: ServiceKey, count: int, healthy: bool) -> str:
    """kube-proxy's answer (its dedented Go template, tabs and all)."""
    namespace, name = key
    flag = "true" if healthy else "false"
    return (f'{{\n\t"service": {{\n\t\t"namespace": "{namespace}",\n\t\t"name": "{name}"\n\t}},\n'
            f'\t"localEndpoints": {count},\n\t"serviceProxyHealthy": {flag}\n}}')


class ServiceHealthServer:
    """One listener per health check node port, opened and closed as Services come and go."""

    def __init__(self, *, host: str = "0.0.0.0", healthy: Callable[[], bool] = lambda: True) -> None:
        self.host = host
        self.healthy = healthy
        self.ports: dict[ServiceKey, int] = {}
        self.endpoints: dict[ServiceKey, int] = {}
        self._runners: dict[ServiceKey, tuple[int, web.AppRunner]] = {}

    async def sync(self, ports: Mapping[ServiceKey, int], endpoints: Mapping[ServiceKey, int]) -> None:
        """Listen on exactly `ports`; answer with `endpoints` (missing: 0)."""
        self.ports, self.endpoints = dict(ports), dict(endpoints)
        for key in [k for k, (port, _) in self._runners.items() if self.ports.get(k) != port]:
            await self._runners.pop(key)[1].cleanup()
        for key, port in self.ports.items():
            if key in self._runners:
                continue
            runner = web.AppRunner(self._app(key), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, self.host, port).start()
            except OSError as exc:
                log.warning("health check node port %d of %s/%s: %s", port, *key, exc)
                await runner.cleanup()
                continue
            self._runners[key] = (port, runner)

    def _app(self, key: ServiceKey) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            count = self.endpoints.get(key, 0)
            healthy = self.healthy()
            return web.Response(status=200 if count and healthy else 503, body=body(key, count, healthy).encode(),
                                headers={"Content-Type": "application/json", "X-Content-Type-Options": "nosniff",
                                         "X-Load-Balancing-Endpoint-Weight": str(count)})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app

    async def close(self) -> None:
        for _, runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()
