"""Running a controller in-process against the test API server, and writing pods the way a
node agent would (there is none in these tests): create, then set IP and readiness
through the status subresource."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

from kubecore import resources as R
from kubecore.client import ApiClient
from kubecore.controller import HealthServer

Obj = dict[str, Any]


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
