"""The garbage collector as a process."""
from __future__ import annotations

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from tests.support.controllers import ControllerProcess, owner_ref, until

# the identity the cluster runs it as (cluster/credentials.py): RBAC gives it only what it does
IDENTITY = CONTROL_PLANE_IDENTITIES["gc"][0]


async def test_gc_process_deletes_dependents_and_stops_on_sigterm(apiserver_process, tmp_path):
    proc = ControllerProcess("services.gc", apiserver_process, user=IDENTITY,
                             log_path=tmp_path / "gc.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client:
            svc = await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                                   "spec": {"ports": [{"port": 80}]}})
            await client.create(R.ENDPOINTSLICES, {
                "metadata": {"name": "web-a", "namespace": "default",
                             "ownerReferences": [owner_ref(svc)]},
                "addressType": "IPv4", "endpoints": []})
            await proc.wait_ready()
            await client.delete(R.SERVICES, "web", "default")

            async def slice_gone():
                try:
                    await client.get(R.ENDPOINTSLICES, "web-a", "default")
                    return False
                except ApiError as exc:
                    return exc.code == 404
            await until(slice_gone)
            status, text = await proc.get("/metrics")
            assert status == 200 and 'gc_deletions_total{resource="endpointslices"} 1.0' in text
        assert await proc.terminate() == 0
    finally:
        proc.kill()
