"""The node lifecycle controller as a process, with --grace."""
from __future__ import annotations

from datetime import UTC

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.nodelifecycle.staleness import format_time, ready_status
from tests.support.controllers import ControllerProcess, until

# the identity the cluster runs it as (cluster/credentials.py): RBAC gives it only what it does
IDENTITY = CONTROL_PLANE_IDENTITIES["nodelifecycle"][0]


async def test_nodelifecycle_process_marks_a_silent_node(apiserver_process, tmp_path):
    from datetime import datetime

    proc = ControllerProcess("services.nodelifecycle", apiserver_process, "--grace", "1", user=IDENTITY,
                             log_path=tmp_path / "nodelifecycle.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client:
            await client.create(R.NODES, {"metadata": {"name": "n1"}})
            now = format_time(datetime.now(UTC))
            await client.patch(R.NODES, "n1", {"status": {"conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": now,
                 "lastTransitionTime": now}]}}, subresource="status")
            await proc.wait_ready()

            async def unknown():
                return ready_status(await client.get(R.NODES, "n1")) == "Unknown"
            await until(unknown, timeout=10)
            status, text = await proc.get("/metrics")
            assert status == 200 and "nodelifecycle_nodes_marked_unknown_total 1.0" in text
        assert await proc.terminate() == 0
    finally:
        proc.kill()
