"""The DaemonSet controller and the scheduler as processes (`python -m ...`), each as the
identity the cluster runs it as (RBAC), against a real API server over etcd; node agents
stood in by `kubelet.py`. The scheduler binds each daemon pod to the node its required node
affinity names, a cordoned node included."""
from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.daemonset.kubelet import kubelets
from tests.deployments.test_process import start
from tests.scheduler.test_integration import make_node
from tests.support.controllers import until

# module -> the component whose identity it runs as (cluster/credentials.py)
IDENTITIES = {"services.scheduler": "scheduler", "services.daemonset": "daemonset"}


@pytest.fixture
def daemon_controllers(apiserver_process: Any, tmp_path: Path) -> Iterator[None]:
    procs = {}
    for module, component in IDENTITIES.items():
        port = free_port()
        kubeconfig = apiserver_process.kubeconfig(tmp_path / f"{module}.kubeconfig",
                                                  CONTROL_PLANE_IDENTITIES[component][0])
        procs[module] = start(module, kubeconfig, port, tmp_path / f"{module}.log")
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, proc=procs[module])
    try:
        yield
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

DS = {"metadata": {"name": "agent", "namespace": "default"},
      "spec": {"selector": {"matchLabels": {"app": "agent"}},
               "template": {"metadata": {"labels": {"app": "agent"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


async def _pods(client: ApiClient) -> list[dict[str, Any]]:
    pods, _ = await client.list(R.PODS, "default", label_selector="app=agent")
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


async def test_a_daemon_pod_on_every_node_and_a_rollout(apiserver_process: Any,
                                                        daemon_controllers: None) -> None:
    async with ApiClient(apiserver_process.config, timeout=5) as client:
        await make_node(client, "node-a")
        await make_node(client, "node-b")
        created = await client.create(R.DAEMONSETS, DS, "default")
        assert created["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
        async with kubelets(client, bind=False):
            async def on_nodes(*nodes: str, image: str = "busybox:1") -> bool:
                pods = await _pods(client)
                return (sorted(p["spec"].get("nodeName") or "" for p in pods) == sorted(nodes)
                        and all(p["spec"]["containers"][0]["image"] == image
                                and (p.get("status") or {}).get("phase") == "Running" for p in pods))
            await until(lambda: on_nodes("node-a", "node-b"), timeout=30)
            pod = (await _pods(client))[0]
            assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
            assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"

            # a node added while it runs, cordoned even, gets its pod
            await make_node(client, "node-c")
            await client.patch(R.NODES, "node-c", {"spec": {"unschedulable": True}})
            await until(lambda: on_nodes("node-a", "node-b", "node-c"), timeout=30)

            updated = await client.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox:2"}]}}}}, "default",
                patch_type="strategic")
            assert updated["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
            await until(lambda: on_nodes("node-a", "node-b", "node-c", image="busybox:2"), timeout=60)

            async def rolled_out() -> dict[str, Any] | None:
                ds = await client.get(R.DAEMONSETS, "agent", "default")
                status = ds.get("status") or {}
                done = (status.get("observedGeneration") == 2
                        and status.get("updatedNumberScheduled") == status.get("numberAvailable") == 3)
                return status if done else None
            status = await until(rolled_out, timeout=30)
            assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == 3
            assert status["numberMisscheduled"] == 0 and "numberUnavailable" not in status
            pods = await _pods(client)
            assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}
            revisions, _ = await client.list(R.CONTROLLERREVISIONS, "default")
            assert sorted(r["revision"] for r in revisions) == [1, 2]
            hashes = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
            assert hashes == {next(r["metadata"]["labels"]["controller-revision-hash"]
                                   for r in revisions if r["revision"] == 2)}
