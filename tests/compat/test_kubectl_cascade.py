"""Unmodified kubectl `delete --cascade=orphan|foreground` on a Deployment that the
Deployment and ReplicaSet controllers run, with the garbage collector, all as processes.
No scheduler or node agent: the pods stay Pending, which is all deletion needs."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.procs import free_port, wait_http_ok
from tests.compat.conftest import Kubectl
from tests.conftest import ROOT


@pytest.fixture
def controllers(apiserver_process, tmp_path: Path) -> Iterator[None]:
    procs = []
    try:
        for module in ("services.deployments", "services.gc"):
            port = free_port()
            with open(tmp_path / f"{module}.log", "wb") as log:
                kubeconfig = apiserver_process.kubeconfig(tmp_path / f"{module}.kubeconfig")
                proc = subprocess.Popen([sys.executable, "-m", module, "--kubeconfig",
                                         str(kubeconfig), "--health-port", str(port)],
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, proc=proc)
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def items(kubectl: Kubectl, kind: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", kind, "-l", "app=web", "-o", "json").stdout)["items"]


def running_deployment(kubectl: Kubectl, replicas: int = 2) -> tuple[dict, list[dict]]:
    """Deployment web, and once the controllers made them, its ReplicaSet and pods."""
    kubectl("create", "deployment", "web", "--image=nginx", f"--replicas={replicas}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rs, pods = items(kubectl, "replicasets"), items(kubectl, "pods")
        if len(rs) == 1 and len(pods) == replicas:
            return rs[0], pods
        time.sleep(0.2)
    raise AssertionError(f"no ReplicaSet with {replicas} pods: {rs} {pods}")


def uids(objs: list[dict]) -> set[str]:
    return {o["metadata"]["uid"] for o in objs}


def test_cascade_orphan_leaves_the_replicaset_and_pods_without_the_deployment(
        kubectl: Kubectl, controllers):
    rs, pods = running_deployment(kubectl)
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    out = kubectl("delete", "deployment", "web", "--cascade=orphan").stdout
    assert 'deployment.apps "web" deleted' in out
    gone = kubectl("get", "deployment", "web", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    time.sleep(2)  # nothing collects them afterwards, no controller recreates them
    (left,) = items(kubectl, "replicasets")
    assert left["metadata"]["uid"] == rs["metadata"]["uid"]
    assert "ownerReferences" not in left["metadata"]
    still = items(kubectl, "pods")
    assert uids(still) == uids(pods)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in still)


def test_cascade_foreground_returns_once_the_dependents_and_the_deployment_are_gone(
        kubectl: Kubectl, controllers):
    running_deployment(kubectl, replicas=3)
    deleting = kubectl.popen("delete", "deployment", "web", "--cascade=foreground")
    try:
        out, err = deleting.communicate(timeout=60)
    finally:
        if deleting.poll() is None:
            deleting.kill()
    assert deleting.returncode == 0, err
    assert 'deployment.apps "web" deleted' in out
    # kubectl waited for the deployment, which went last: nothing is left
    gone = kubectl("get", "deployment", "web", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert items(kubectl, "replicasets") == [] and items(kubectl, "pods") == []


def test_cascade_foreground_marks_the_deployment_while_its_dependents_go(
        kubectl: Kubectl, controllers, apiserver_process):
    """Without the collector's work the deployment would wait: seen with `--wait=false`
    while a bound pod (no node agent to finish it) holds the ReplicaSet."""
    import urllib.request

    rs, pods = running_deployment(kubectl, replicas=1)
    name = pods[0]["metadata"]["name"]
    pod_url = f"{apiserver_process.url}/api/v1/namespaces/default/pods/{name}"
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    req = urllib.request.Request(pod_url + "/binding", method="POST",
                                 data=json.dumps(binding).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5, context=apiserver_process.config.ssl_context()).close()
    kubectl("delete", "deployment", "web", "--cascade=foreground", "--wait=false")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pod = kubectl.json("get", "pod", pods[0]["metadata"]["name"])
        if pod["metadata"].get("deletionTimestamp"):
            break
        time.sleep(0.2)
    time.sleep(1)
    deploy = kubectl.json("get", "deployment", "web")
    assert deploy["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert deploy["metadata"]["deletionTimestamp"]
    held = kubectl.json("get", "replicaset", rs["metadata"]["name"])
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    # the node agent's confirmation: the pod goes, then the ReplicaSet, then the deployment
    req = urllib.request.Request(pod_url + "?gracePeriodSeconds=0", method="DELETE")
    urllib.request.urlopen(req, timeout=5, context=apiserver_process.config.ssl_context()).close()
    kubectl("wait", "--for=delete", "deployment/web", "--timeout=30s")
    assert items(kubectl, "replicasets") == []
