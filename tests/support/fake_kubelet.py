"""A stand-in for the node agents where a test or a benchmark needs pods to finish but not to
run: it watches pods and writes the status a node agent would once the container exits.

A pod whose first container's command holds `exit N` runs for `run_seconds` (Running, Ready)
and then exits with N: Succeeded for 0, Failed otherwise (restartPolicy Never; with
OnFailure a failing container is counted as restarted and the pod stays Running). Any other
command runs until the pod is deleted. A pod being deleted is removed at once (grace 0), as
a node agent does once its containers have stopped.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.informer import Informer
from kubecore.informer.store import object_key, split_key

EXIT = re.compile(r"\bexit (\d+)")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_code(pod: Obj) -> int | None:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    m = EXIT.search(" ".join(containers[0].get("command") or []) + " " + " ".join(containers[0].get("args") or []))
    return int(m.group(1)) if m else None


class FakeKubelet:
    def __init__(self, client: ApiClient, *, run_seconds: float = 0.0, workers: int = 8) -> None:
        self.client = client
        self.run_seconds = run_seconds
        self.pods = Informer(client, R.PODS)
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.workers = workers
        self.started: set[str] = set()
        self.finished = 0
        self.pods.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new))

    def _enqueue(self, pod: Obj) -> None:
        self.queue.put_nowait(object_key(pod))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeKubelet]:
        await self.pods.start()
        tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            yield self
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pods.stop()

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self._handle(key)
            except ApiError:
                pass  # gone or changed meanwhile: a later event brings it back

    async def _handle(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None:
            return
        namespace, name = split_key(key)
        meta, status = pod["metadata"], pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            if not meta.get("finalizers"):
                with contextlib.suppress(ApiError):
                    await self.client.delete(R.PODS, name, namespace, grace_period_seconds=0)
            return
        if status.get("phase") in ("Succeeded", "Failed") or key in self.started:
            return
        self.started.add(key)
        code = exit_code(pod)
        await self._status(name, namespace, "Running", {"running": {"startedAt": _now()}}, ready=True)
        if code is None:
            return
        await asyncio.sleep(self.run_seconds)
        terminated = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": _now(), "finishedAt": _now()}}
        on_failure = (pod.get("spec") or {}).get("restartPolicy") == "OnFailure"
        if code != 0 and on_failure:
            await self._status(name, namespace, "Running", {"running": {"startedAt": _now()}},
                               ready=False, restarts=1, last=terminated)
            return
        await self._status(name, namespace, "Succeeded" if code == 0 else "Failed", terminated, ready=False)
        self.finished += 1

    async def _status(self, name: str, namespace: str | None, phase: str, state: Obj, *, ready: bool,
                      restarts: int = 0, last: Obj | None = None) -> None:
        container: Obj = {"name": "c", "state": state, "ready": ready, "restartCount": restarts,
                          "image": "busybox", "imageID": "", "started": phase == "Running"}
        if last is not None:
            container["lastState"] = last
        status = {"phase": phase, "containerStatuses": [container],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                  "lastTransitionTime": _now()}]}
        await self.client.patch(R.PODS, name, {"status": status}, namespace, subresource="status")
