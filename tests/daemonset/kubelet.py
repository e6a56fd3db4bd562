"""A stand-in for the node agents of the DaemonSet tests: pods that are bound turn Running and
Ready, pods being deleted finish (grace 0), and, where no scheduler runs, pods are bound to the
node their required node affinity names."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiUnavailable
from services.daemonset.placement import target_node


async def step(client: Any, *, bind: bool, ready: bool = True) -> None:
    pods, _ = await client.list(R.PODS, "default")
    for pod in pods:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        try:
            if meta.get("deletionTimestamp"):
                await client.delete(R.PODS, meta["name"], "default", grace_period_seconds=0)
            elif not spec.get("nodeName"):
                if bind and target_node(pod):
                    await client.bind("default", meta["name"], target_node(pod))
            elif ready and (pod.get("status") or {}).get("phase") != "Running":
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                await client.patch(R.PODS, meta["name"], {"status": {
                    "phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                                        "lastTransitionTime": now}]}},
                    "default", subresource="status")
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise


@contextlib.asynccontextmanager
async def kubelets(client: Any, *, bind: bool) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            with contextlib.suppress(ApiUnavailable):
                await step(client, bind=bind)
            await asyncio.sleep(0.05)
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
