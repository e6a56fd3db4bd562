"""Startup, readiness and liveness probes: one asyncio task per (container, probe kind).

A probe's result changes only after `successThreshold` successes or `failureThreshold`
failures in a row, as kubelet counts them. Readiness starts False, liveness True. A container
with a startupProbe is probed only by it until it succeeds once (`started`); then its
readiness and liveness probes begin. A change calls `on_change(pod key)` so the pod's worker
re-syncs: startup feeds the container's `started`, readiness the Ready condition, and a
failed liveness or startup probe makes the planner kill the container (and restartPolicy
restart it).
Every failed run also calls `on_failure(target, kind, detail)`, for kubelet's Unhealthy event.

httpGet and tcpSocket probes connect to the pod's IP from the node's network namespace (the
only place pod IPs are reachable from); exec probes run through the runtime's exec_sync.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import Counter

from services.nodeagent import netns
from services.nodeagent.cri import ContainerRuntime
from services.nodeagent.runtime import RuntimeServiceError

log = logging.getLogger(__name__)
PROBE_RESULTS = Counter("nodeagent_probe_total", "Probe runs by kind and result.", ["probe", "result"])
READINESS, LIVENESS, STARTUP = "readiness", "liveness", "startup"


class ProbeError(Exception):
    pass


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe port is a number or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ProbeError(f"port {port!r} is not a number nor a named port of container {container.get('name')}")


@dataclass(frozen=True)
class ProbeTarget:
    pod_key: str
    container: Mapping[str, Any]
    container_id: str
    pod_ip: str


class Prober:
    """Runs the probes of running containers; `results` holds the latest verdicts by container id."""

    def __init__(self, runtime: ContainerRuntime, *, host_netns: str | None, on_change: Callable[[str], None],
                 on_failure: Callable[[ProbeTarget, str, str], None] | None = None) -> None:
        self.runtime = runtime
        self.host_netns = host_netns
        self.on_change = on_change
        self.on_failure = on_failure
        self.ready: dict[str, bool] = {}
        self.started: dict[str, bool] = {}  # containers whose startup probe succeeded
        self.live_failed: set[str] = set()
        self.startup_failed: set[str] = set()
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(force_close=True,
                                             socket_factory=netns.aiohttp_socket_factory(self.host_netns))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def ensure(self, target: ProbeTarget) -> None:
        """Probe workers for this running container (idempotent)."""
        kinds: tuple[tuple[str, str], ...] = ((READINESS, "readinessProbe"), (LIVENESS, "livenessProbe"))
        if target.container.get("startupProbe") and not self.started.get(target.container_id):
            kinds = ((STARTUP, "startupProbe"),)
        for kind, field_name in kinds:
            spec = target.container.get(field_name)
            key = (target.container_id, kind)
            if spec and key not in self._tasks:
                self._tasks[key] = asyncio.get_running_loop().create_task(
                    self._run(kind, spec, target), name=f"probe-{kind}-{target.container_id[:12]}")

    def keep_only(self, container_ids: set[str]) -> None:
        """Stop the workers (and forget results) of containers not in `container_ids`."""
        for key in [k for k in self._tasks if k[0] not in container_ids]:
            self._tasks.pop(key).cancel()
        for cid in [c for c in self.ready if c not in container_ids]:
            del self.ready[cid]
        self.started = {c: v for c, v in self.started.items() if c in container_ids}
        self.live_failed &= container_ids
        self.startup_failed &= container_ids

    def forget(self, container_ids: set[str]) -> None:
        for key in [k for k in self._tasks if k[0] in container_ids]:
            self._tasks.pop(key).cancel()
        for cid in container_ids:
            self.ready.pop(cid, None)
            self.started.pop(cid, None)
            self.live_failed.discard(cid)
            self.startup_failed.discard(cid)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    async def _run(self, kind: str, spec: Mapping[str, Any], target: ProbeTarget) -> None:
        period = max(float(spec.get("periodSeconds", 10)), 0.1)
        threshold_ok = max(int(spec.get("successThreshold", 1)), 1)
        threshold_bad = max(int(spec.get("failureThreshold", 3)), 1)
        timeout = max(float(spec.get("timeoutSeconds", 1)), 0.1)
        await asyncio.sleep(float(spec.get("initialDelaySeconds", 0)))
        ok_run = bad_run = 0
        while True:
            try:
                ok, detail = await self.probe_once(spec, target, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken probe definition is a failing probe
                ok, detail = False, str(exc)
            PROBE_RESULTS.labels(kind, "success" if ok else "failure").inc()
            if not ok and self.on_failure is not None:
                self.on_failure(target, kind, detail)
            ok_run, bad_run = (ok_run + 1, 0) if ok else (0, bad_run + 1)
            if kind == STARTUP:
                if self._startup_verdict(target, ok_run, bad_run, threshold_bad, detail):
                    return
            elif kind == READINESS:
                current = self.ready.get(target.container_id, False)
                if not current and ok_run >= threshold_ok:
                    self._set_ready(target, True)
                elif current and bad_run >= threshold_bad:
                    log.info("pod=%s container %s readiness failed: %s", target.pod_key,
                             target.container.get("name"), detail)
                    self._set_ready(target, False)
            elif bad_run >= threshold_bad and target.container_id not in self.live_failed:
                log.info("pod=%s container %s liveness failed: %s", target.pod_key, target.container.get("name"),
                         detail)
                self.live_failed.add(target.container_id)
                self.on_change(target.pod_key)
                return
            await asyncio.sleep(period)

    def _startup_verdict(self, target: ProbeTarget, ok_run: int, bad_run: int, threshold_bad: int,
                         detail: str) -> bool:
        """After one success the container has started (its other probes begin); after
        failureThreshold failures it is killed. True when the startup worker is done."""
        cid = target.container_id
        if ok_run >= 1:
            self.started[cid] = True
            self._tasks.pop((cid, STARTUP), None)
            self.ensure(target)
            self.on_change(target.pod_key)
            return True
        if bad_run >= threshold_bad:
            log.info("pod=%s container %s startup failed: %s", target.pod_key, target.container.get("name"), detail)
            self.startup_failed.add(cid)
            self.on_change(target.pod_key)
            return True
        return False

    def _set_ready(self, target: ProbeTarget, value: bool) -> None:
        self.ready[target.container_id] = value
        self.on_change(target.pod_key)

    async def probe_once(self, spec: Mapping[str, Any], target: ProbeTarget, timeout: float) -> tuple[bool, str]:
        if "httpGet" in spec:
            http = spec["httpGet"]
            port = resolve_port(http.get("port"), target.container)
            host = http.get("host") or target.pod_ip
            path = http.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            scheme = (http.get("scheme") or "HTTP").lower()
            headers = {h["name"]: h.get("value", "") for h in http.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.30")
            url = f"{scheme}://{host}:{port}{path}"
            try:
                async with self._http().get(url, headers=headers, ssl=False,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    await resp.read()
                    return 200 <= resp.status < 400, f"HTTP probe failed with statuscode: {resp.status}"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                return False, f"Get {url}: {exc or type(exc).__name__}"
        if "tcpSocket" in spec:
            tcp = spec["tcpSocket"]
            port = resolve_port(tcp.get("port"), target.container)
            host = tcp.get("host") or target.pod_ip
            try:
                _, writer = await netns.open_connection(self.host_netns, host, port, timeout)
            except (TimeoutError, OSError) as exc:
                return False, f"dial tcp {host}:{port}: {exc or type(exc).__name__}"
            writer.close()
            return True, ""
        if "exec" in spec:
            command = list((spec["exec"] or {}).get("command") or [])
            if not command:
                raise ProbeError("exec probe without command")
            try:
                code, out, err = await self.runtime.exec_sync(target.container_id, command, timeout=timeout)
            except RuntimeServiceError as exc:
                return False, str(exc)
            return code == 0, f"command {command} exited with {code}: {(out + err).decode(errors='replace')[:200]}"
        raise ProbeError("probe has no httpGet, tcpSocket or exec handler")
