"""The EndpointSlice controller against the recording fake API client: each change of the pods
is one write, and the echoes of its own writes cause none (test_controller.py runs it against
the real API server)."""
from __future__ import annotations

import asyncio

from kubecore.api import resources as R
from services.endpointslice.controller import EndpointSliceController
from tests.fakes.api import FakeApiClient
from tests.support.controllers import create_pod, running, set_pod_status, until

SVC_LABEL = "kubernetes.io/service-name"


async def quiet(api: FakeApiClient, *, writes: int, settle: float = 0.5) -> list[str]:
    """Wait for `writes` writes in all, then long enough for any echo to cause more."""
    async def enough() -> bool:
        return len(api.writes()) >= writes
    await until(enough, timeout=10)
    await asyncio.sleep(settle)
    return api.writes()


def ready_by_pod(api: FakeApiClient) -> dict[str, bool]:
    return {ep["targetRef"]["name"]: ep["conditions"]["ready"]
            for (kind, _, _), s in api.objects.items() if kind == "endpointslices"
            for ep in s.get("endpoints") or []}


async def test_one_write_per_change_and_none_for_its_own_echoes():
    api = FakeApiClient()
    api.preload(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                             "spec": {"selector": {"app": "web"},
                                      "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    await create_pod(api, "web-1", ip="10.1.0.1", node="n1")  # type: ignore[arg-type]
    await create_pod(api, "web-2", ip="10.1.0.2", node="n1")  # type: ignore[arg-type]
    setup = len(api.writes())
    async with running(EndpointSliceController(api)):  # type: ignore[arg-type]
        writes = await quiet(api, writes=setup + 1)
        assert writes[setup:] == ["create endpointslices/default"]
        assert ready_by_pod(api) == {"web-1": True, "web-2": True}
        (created,) = [c for c in api.calls if c.verb == "create" and c.resource == "endpointslices"]
        assert created.body["metadata"]["labels"][SVC_LABEL] == "web"

        await set_pod_status(api, "web-2", ip="10.1.0.2", ready=False)  # type: ignore[arg-type]
        writes = await quiet(api, writes=setup + 3)
        assert writes[setup + 1:] == ["patch pods/default/web-2 status",
                                      f"replace endpointslices/default/{created_name(api)}"]
        assert ready_by_pod(api) == {"web-1": True, "web-2": False}

        await api.delete(R.PODS, "web-1", "default", grace_period_seconds=0)
        writes = await quiet(api, writes=setup + 5)
        assert writes[setup + 3:] == ["delete pods/default/web-1",
                                      f"replace endpointslices/default/{created_name(api)}"]
        assert ready_by_pod(api) == {"web-2": False}


def created_name(api: FakeApiClient) -> str:
    (name,) = [key[2] for key in api.objects if key[0] == "endpointslices"]
    return name
