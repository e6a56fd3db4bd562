"""The scheduler and the deployments controllers as processes (`python -m ...`) against an
API server process that is killed and restarted in the middle."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient, ApiUnavailable
from tests.conftest import ROOT
from tests.scheduler.test_integration import make_node
from tests.support.controllers import set_pod_status, until


def start(module: str, kubeconfig: Path, port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", module, "--kubeconfig", str(kubeconfig),
                                 "--health-port", str(port), "--log-json"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


async def get_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            return r.status, await r.text()


@pytest.fixture
def controllers(apiserver_process, tmp_path):
    ports = {"services.scheduler": free_port(), "services.deployments": free_port()}
    # each as the identity the cluster runs it as (cluster/credentials.py), under RBAC
    identities = {"services.scheduler": "scheduler", "services.deployments": "deployments"}
    procs = {m: start(m, apiserver_process.kubeconfig(tmp_path / f"{m}.kubeconfig",
                                                      CONTROL_PLANE_IDENTITIES[identities[m]][0]),
                      p, tmp_path / f"{m}.log") for m, p in ports.items()}
    try:
        for module, port in ports.items():
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, proc=procs[module])
        yield ports, procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_processes_run_a_deployment_and_survive_an_apiserver_restart(
        apiserver_process, controllers, tmp_path):
    ports, procs = controllers
    async with ApiClient(apiserver_process.config, timeout=5) as client:
        await make_node(client, "node-a")
        await make_node(client, "node-b")
        await client.create(R.DEPLOYMENTS, {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})

        async def bound(n: int):
            try:
                pods, _ = await client.list(R.PODS, "default", label_selector="app=web")
            except ApiUnavailable:
                return None
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if len(live) == n and all(p["spec"].get("nodeName") for p in live):
                return live
            return None
        pods = await until(lambda: bound(4), timeout=30)
        assert Counter(p["spec"]["nodeName"] for p in pods) == {"node-a": 2, "node-b": 2}

        await asyncio.to_thread(apiserver_process.kill)  # SIGKILL
        await asyncio.sleep(1.0)
        await asyncio.to_thread(apiserver_process.start)  # same port, same etcd

        await client.patch(R.DEPLOYMENTS, "web", {"spec": {"replicas": 6}}, "default",
                           subresource="scale")
        pods = await until(lambda: bound(6), timeout=60)
        assert Counter(p["spec"]["nodeName"] for p in pods) == {"node-a": 3, "node-b": 3}
        for i, pod in enumerate(pods):
            await set_pod_status(client, pod["metadata"]["name"], ip=f"10.244.1.{i + 2}", ready=True)

        async def ready():
            status = (await client.get(R.DEPLOYMENTS, "web", "default")).get("status") or {}
            return status.get("readyReplicas") == 6 and status.get("availableReplicas") == 6
        await until(ready, timeout=30)

    for _module, port in ports.items():
        assert (await get_text(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        assert (await get_text(f"http://127.0.0.1:{port}/readyz"))[0] == 200
        code, text = await get_text(f"http://127.0.0.1:{port}/metrics")
        assert code == 200 and "workqueue_depth" in text
    for _module, proc in procs.items():
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    lines = [json.loads(line) for line in
             (tmp_path / "services.deployments.log").read_text().splitlines()
             if line.startswith("{")]
    assert any(record.get("key") == "default/web" and record["logger"] == "deployment" for record in lines)
