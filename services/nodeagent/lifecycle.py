"""Container lifecycle hooks: postStart and preStop (kubelet's pkg/kubelet/lifecycle handlers).

A handler is `exec` (a command run in the container, through the runtime's exec_sync, failing
on a non-zero exit), `httpGet` (a GET to the pod's IP from the node's network namespace, failing
only when the request cannot be made: kubelet does not look at the status code) or `sleep`.
`run` returns None on success, else kubelet's message for the FailedPostStartHook /
FailedPreStopHook Event. The executor decides what follows: a failed postStart kills the
container, a preStop runs within the grace period before the TERM signal.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from kubecore.api.formats import go_quote
from services.nodeagent import netns, podevents
from services.nodeagent.cri import ContainerRuntime
from services.nodeagent.probes import ProbeError, resolve_port
from services.nodeagent.runtime import RuntimeServiceError

log = logging.getLogger("nodeagent")


class HookRunner:
    """Runs lifecycle handlers of running containers."""

    def __init__(self, runtime: ContainerRuntime, *, host_netns: str | None) -> None:
        self.runtime = runtime
        self.host_netns = host_netns
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(force_close=True,
                                             socket_factory=netns.aiohttp_socket_factory(self.host_netns))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, pod: Mapping[str, Any], container: Mapping[str, Any], container_id: str, pod_ip: str,
                  handler: Mapping[str, Any], timeout: float) -> str | None:
        """Run one handler within `timeout` seconds; None, or why it failed (kubelet's words)."""
        where = f"for Container {go_quote(str(container.get('name', '')))} in Pod {go_quote(podevents.pod_text(pod))}"
        if isinstance(handler.get("exec"), dict):
            command = [str(a) for a in handler["exec"].get("command") or []]
            hook = f"Exec lifecycle hook ([{' '.join(command)}]) {where} failed - error: "
            try:
                code, out, err = await self.runtime.exec_sync(container_id, command, timeout=max(timeout, 0.1))
            except RuntimeServiceError as exc:
                return f"{hook}{exc}, message: \"\""
            if code == 0:
                return None
            output = (out + err).decode(errors="replace")
            return f"{hook}command '{' '.join(command)}' exited with {code}: {output}, message: {go_quote(output)}"
        if isinstance(handler.get("httpGet"), dict):
            problem = await self._http_get(handler["httpGet"], container, pod_ip, timeout)
            if problem is None:
                return None
            return f"HTTP lifecycle hook ({handler['httpGet'].get('path', '')}) {where} failed - error: {problem}"
        if isinstance(handler.get("sleep"), dict):
            await asyncio.sleep(min(float(handler["sleep"].get("seconds") or 0), max(timeout, 0.0)))
            return None
        return f"Cannot run handler: invalid handler: {dict(handler)}"

    async def _http_get(self, http: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str,
                        timeout: float) -> str | None:
        path = str(http.get("path") or "/")
        try:
            port = resolve_port(http.get("port"), container)
        except ProbeError as exc:
            return str(exc)
        host = http.get("host") or pod_ip
        scheme = str(http.get("scheme") or "HTTP").lower()
        url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
        headers = {h["name"]: h.get("value", "") for h in http.get("httpHeaders") or [] if isinstance(h, dict)}
        try:
            async with self._http().get(url, headers=headers, ssl=False,
                                        timeout=aiohttp.ClientTimeout(total=max(timeout, 0.1))) as resp:
                await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return f"Get {go_quote(url)}: {exc or type(exc).__name__}"
        return None
