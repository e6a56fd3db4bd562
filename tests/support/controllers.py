"""Running a controller in-process against the test API server, and writing pods the way a
node agent would (there is none in these tests): create, then set IP and readiness
through the status subresource."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from kubecore.api import resources as R
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer


async def until(cond: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                interval: float = 0.05) -> Any:
    """Poll `cond` until it returns something truthy; return that."""
    async def poll() -> Any:
        while True:
            value = await cond()
            if value:
                return value
            await asyncio.sleep(interval)
    return await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def running(controller: Any) -> AsyncIterator[HealthServer]:
    """Run `controller` (anything with `run(...)` and a `factory`) until the block ends;
    enter once its caches have synced."""
    stop = asyncio.Event()
    health: list[HealthServer | None] = []
    task = asyncio.create_task(controller.run(health_port=0, stop=stop, handle_signals=False,
                                              on_ready=health.append))
    try:
        async def synced() -> bool:
            if task.done():
                task.result()
            return bool(health) and controller.factory.has_synced()
        await until(synced)
        assert health[0] is not None
        yield health[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def create_pod(client: ApiClient, name: str, *, labels: dict[str, str] | None = None,
                     ip: str | None = None, ready: bool = True, node: str | None = None,
                     ports: list[Obj] | None = None, namespace: str = "default",
                     owner: Obj | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    spec: Obj = {"containers": [{"name": "c", "image": "busybox", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node
    pod = await client.create(R.PODS, {"metadata": meta, "spec": spec}, namespace)
    if ip is not None:
        pod = await set_pod_status(client, name, ip=ip, ready=ready, namespace=namespace)
    return pod


async def set_pod_status(client: ApiClient, name: str, *, ip: str, ready: bool,
                         namespace: str = "default") -> Obj:
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return await client.patch(R.PODS, name, {"status": status}, namespace, subresource="status")


def owner_ref(obj: Obj, *, controller: bool = True) -> Obj:
    return {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}


class ControllerProcess:
    """`python -m <module> --kubeconfig FILE --health-port N ...` as a child process, with a
    kubeconfig for `server` (an ApiServer or ApiServerProcess of tests/conftest.py) as the
    admin, or as `user` in `groups`."""

    def __init__(self, module: str, server: Any, *extra: str, log_path: Any = None,
                 user: str | None = None, groups: tuple[str, ...] = ()) -> None:
        import sys
        import tempfile
        from pathlib import Path

        from cluster.procs import free_port

        self.port = free_port()
        self.health = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="controller-")
        kubeconfig = server.kubeconfig(Path(self._dir.name) / "kubeconfig", user, groups)
        self.args = [sys.executable, "-m", module, "--kubeconfig", str(kubeconfig),
                     "--health-port", str(self.port), *extra]
        self.log_path = log_path
        self.proc: Any = None

    def start(self) -> ControllerProcess:
        import subprocess

        from tests.conftest import ROOT

        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    async def get(self, path: str) -> tuple[int, str]:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(self.health + path) as r:
                    return r.status, await r.text()
        except aiohttp.ClientError:
            return 0, ""

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            assert self.proc.poll() is None, f"{self.args} exited with {self.proc.returncode}"
            return (await self.get("/readyz"))[0] == 200
        await until(ready, timeout)

    async def terminate(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return int(await asyncio.to_thread(self.proc.wait, 15))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
