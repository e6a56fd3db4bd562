"""kubectl's workload verbs against the API server and the Deployment controller: `scale` on
every kind that has a /scale subresource (from the resource table, so kinds added later are
covered), `rollout history` and `undo` (read from the ReplicaSets' revision and change-cause
annotations), and `wait` for conditions, deletion and JSONPath values."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.procs import free_port, wait_http_ok
from kubecore.api import resources as R
from tests.compat.conftest import Kubectl, rows
from tests.conftest import ROOT

SCALABLE = [rt for rt in R.ALL if "scale" in rt.subresources]


@pytest.fixture
def deployments_controller(apiserver_process, tmp_path: Path):
    port = free_port()
    kubeconfig = apiserver_process.kubeconfig(tmp_path / "controller.kubeconfig")
    with open(tmp_path / "deployments.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.deployments", "--kubeconfig",
                                 str(kubeconfig), "--health-port", str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30, proc=proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def workload(rt: R.ResourceType, name: str) -> str:
    """The smallest object of a scalable kind: replicas, a selector, a pod template (and
    the governing Service a StatefulSet names)."""
    service = f"  serviceName: {name}\n" if rt.kind == "StatefulSet" else ""
    return f"""\
apiVersion: {rt.api_version}
kind: {rt.kind}
metadata: {{name: {name}}}
spec:
{service}  replicas: 1
  selector: {{matchLabels: {{scaled: {name}}}}}
  template:
    metadata: {{labels: {{scaled: {name}}}}}
    spec:
      containers: [{{name: c, image: nginx}}]
"""


@pytest.mark.parametrize("rt", SCALABLE, ids=[rt.plural for rt in SCALABLE])
def test_scale_every_scalable_kind(kubectl: Kubectl, rt: R.ResourceType):
    name = f"scaled-{rt.singular}"
    path = kubectl.write(f"{name}.yaml", workload(rt, name))
    kubectl("apply", "-f", str(path))
    out = kubectl("scale", f"{rt.plural}.{rt.group}/{name}", "--replicas=4").stdout
    assert out.strip() == f"{rt.singular}.{rt.group}/{name} scaled"
    assert kubectl("get", f"{rt.plural}.{rt.group}", name, "-o", "jsonpath={.spec.replicas}").stdout == "4"
    scale = json.loads(kubectl("get", "--raw", f"/apis/{rt.group}/{rt.version}/namespaces/default/"
                               f"{rt.plural}/{name}/scale").stdout)
    assert scale["spec"] == {"replicas": 4} and scale["status"]["selector"] == f"scaled={name}"
    proc = kubectl("scale", f"{rt.plural}.{rt.group}/{name}", "--replicas=2", "--current-replicas=3",
                   check=False)
    assert proc.returncode != 0 and "Expected replicas to be 3, was 4" in proc.stderr


def _until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_rollout_history_and_undo(kubectl: Kubectl, deployments_controller):
    kubectl("create", "deployment", "web", "--image=nginx:1")
    _until(lambda: "1" in kubectl("rollout", "history", "deploy/web").stdout)
    kubectl("set", "image", "deploy/web", "nginx=nginx:2")
    # as in a real cluster, the cause names the revision the Deployment is at when annotated
    _until(lambda: "2" in kubectl("rollout", "history", "deploy/web").stdout)
    kubectl("annotate", "deploy/web", "kubernetes.io/change-cause=move to nginx 2")

    def history() -> list[list[str]]:
        lines = rows(kubectl("rollout", "history", "deploy/web").stdout)
        return lines if lines[-1][-1] == "move to nginx 2" else []
    assert _until(history)[1:] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "move to nginx 2"]]
    assert "nginx:2" in kubectl("rollout", "history", "deploy/web", "--revision=2").stdout

    assert "rolled back" in kubectl("rollout", "undo", "deploy/web").stdout
    image = "jsonpath={.spec.template.spec.containers[0].image}"
    assert kubectl("get", "deploy/web", "-o", image).stdout == "nginx:1"
    _until(lambda: [r[0] for r in rows(kubectl("rollout", "history", "deploy/web").stdout)[2:]] == ["2", "3"])


def _make_ready(kubectl: Kubectl, pod: str) -> None:
    kubectl("patch", pod, "--subresource=status", "--type=merge", "-p",
            '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True",'
            '"lastTransitionTime":"2026-01-01T00:00:00Z"}]}}')


def test_wait_for_conditions_deletion_and_jsonpath(kubectl: Kubectl, deployments_controller):
    kubectl("create", "deployment", "web", "--image=nginx")
    waiter = kubectl.popen("wait", "--for=condition=Available", "deploy/web", "--timeout=30s")
    def web_pod() -> str:
        return kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout.strip()
    pod = _until(web_pod)
    pod_waiter = kubectl.popen("wait", "--for=condition=Ready", pod, "--timeout=30s")
    _make_ready(kubectl, pod)
    assert pod_waiter.wait(timeout=40) == 0, pod_waiter.stderr.read()
    assert waiter.wait(timeout=40) == 0, waiter.stderr.read()
    assert "condition met" in waiter.stdout.read()

    kubectl("wait", "--for=jsonpath={.status.availableReplicas}=1", "deploy/web", "--timeout=10s")
    kubectl("run", "lone", "--image=nginx")
    deleter = kubectl.popen("wait", "--for=delete", "pod/lone", "--timeout=30s")
    kubectl("delete", "pod", "lone", "--wait=false")
    assert deleter.wait(timeout=40) == 0, deleter.stderr.read()
