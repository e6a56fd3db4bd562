"""The controllers as processes: flags, health endpoints, an API server restart, SIGTERM."""
from __future__ import annotations

import asyncio
import signal

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.support.controllers import ControllerProcess, create_pod, until

# the identity the cluster runs it as (cluster/credentials.py): RBAC gives it only what it does
IDENTITY = CONTROL_PLANE_IDENTITIES["endpointslice"][0]


async def endpoints(client: ApiClient) -> dict[str, bool]:
    items, _ = await client.list(R.ENDPOINTSLICES, "default",
                                 label_selector="kubernetes.io/service-name=web")
    return {ep["targetRef"]["name"]: ep["conditions"]["ready"]
            for s in items for ep in s.get("endpoints") or []}


async def test_endpointslice_process_survives_an_apiserver_restart(apiserver_process, tmp_path):
    proc = ControllerProcess("services.endpointslice", apiserver_process, user=IDENTITY,
                             log_path=tmp_path / "endpointslice.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client:
            await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                             "spec": {"selector": {"app": "web"},
                                                      "ports": [{"port": 80}]}})
            await create_pod(client, "web-1", ip="10.1.0.1")
            await proc.wait_ready()
            assert (await proc.get("/healthz"))[0] == 200

            async def has(expected):
                return await endpoints(client) == expected
            await until(lambda: has({"web-1": True}))

            apiserver_process.kill(signal.SIGKILL)
            await asyncio.sleep(0.5)
            apiserver_process.start()  # same port, same etcd
            await create_pod(client, "web-2", ip="10.1.0.2")
            await until(lambda: has({"web-1": True, "web-2": True}), timeout=30)
            status, text = await proc.get("/metrics")
            assert status == 200
            assert 'endpointslice_syncs_total{result="changed"}' in text
            assert "endpointslice_sync_duration_seconds_bucket" in text
            assert 'informer_synced{informer="endpointslices.discovery.k8s.io"} 1.0' in text
        assert await proc.terminate() == 0
    finally:
        proc.kill()
    log = (tmp_path / "endpointslice.log").read_text()
    assert "key=default/web" in log and "endpointslice: stopped" in log
