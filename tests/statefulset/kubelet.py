"""A stand-in for the node agents in StatefulSet tests: it marks each new pod Running and
Ready (after `delay`), finishes graceful deletions, and records, when each pod first
appears, which pods of the namespace were ready then (to check OrderedReady's order)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.informer import Informer


def is_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or [])


def live(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp")


class FakeKubelet:
    def __init__(self, client: ApiClient, *, delay: float = 0.0, namespace: str = "default") -> None:
        self.client = client
        self.delay = delay
        self.namespace = namespace
        self.informer = Informer(client, R.PODS, namespace=namespace)
        self.todo: asyncio.Queue[Obj] = asyncio.Queue()
        self.hold: set[str] = set()  # pod names not to make ready
        self.created: list[tuple[str, frozenset[str]]] = []  # (pod, ready pods when it appeared)
        self.deleted: list[str] = []  # pods in the order their deletion began
        self._tasks: set[asyncio.Task[None]] = set()
        self.informer.add_handlers(on_add=self._added, on_update=self._updated,
                                   on_delete=self._removed)

    def _ready_now(self) -> frozenset[str]:
        return frozenset(p["metadata"]["name"] for p in self.informer.store.list()
                         if live(p) and is_ready(p))

    def _added(self, pod: Obj) -> None:
        self.created.append((pod["metadata"]["name"], self._ready_now()))
        self.todo.put_nowait(pod)

    def _updated(self, old: Obj, new: Obj) -> None:
        if not live(new) and live(old):
            self.deleted.append(new["metadata"]["name"])
            self.todo.put_nowait(new)

    def _removed(self, pod: Obj) -> None:
        """Unscheduled pods are deleted at once (no node to wait for): no update comes first."""
        if live(pod):
            self.deleted.append(pod["metadata"]["name"])

    async def set_status(self, name: str, phase: str, ready: bool) -> None:
        status = {"phase": phase, "podIP": "10.244.0.9",
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        await self.client.patch(R.PODS, name, {"status": status}, self.namespace, subresource="status")

    async def _handle(self, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        with contextlib.suppress(ApiError):
            if not live(pod):
                await self.client.delete(R.PODS, name, self.namespace, grace_period_seconds=0)
            elif name not in self.hold:
                await asyncio.sleep(self.delay)
                await self.set_status(name, "Running", True)

    async def _work(self) -> None:
        while True:
            pod = await self.todo.get()
            task = asyncio.create_task(self._handle(pod))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[FakeKubelet]:
        await self.informer.start()
        await self.informer.synced.wait()
        worker = asyncio.create_task(self._work())
        try:
            yield self
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await self.informer.stop()
