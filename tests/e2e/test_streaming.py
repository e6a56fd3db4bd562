"""The streaming client paths of the real kubectl in a whole local cluster: port-forward to a
Service from the host, `run -i --rm` with stdin piped, cp both ways, and logs --previous
after a restart. The scheduler places the pods; the node agents serve the streams."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from tests.e2e.harness import Cluster, running_ready, wait_until

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

MANIFEST = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pf", "namespace": "default"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "pf"}},
              "template": {"metadata": {"labels": {"app": "pf"}}, "spec": {"containers": [{
                  "name": "web", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39",
                  "args": ["netexec", "--http-port=8080"], "ports": [{"containerPort": 8080}]}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "pfsvc", "namespace": "default"},
     "spec": {"selector": {"app": "pf"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crashy", "namespace": "default"},
     "spec": {"containers": [{"name": "main", "image": "busybox",
                              "command": ["sh", "-c",
                                          "echo run-$(cat /proc/sys/kernel/random/uuid); sleep 2; exit 1"]}]}},
]}


def kubectl(c: Cluster, *args: str, check: bool = True, timeout: float = 60,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    assert KUBECTL is not None
    res = subprocess.run([KUBECTL, "--kubeconfig", c.status["kubeconfig"], *args], capture_output=True, text=True,
                         timeout=timeout, input=stdin)
    if check and res.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture(scope="module")
def applied(cluster, tmp_path_factory):
    path = tmp_path_factory.mktemp("streaming") / "objs.json"
    path.write_text(json.dumps(MANIFEST))
    cluster.mkctl("apply", "-f", str(path))
    wait_until(lambda: len([p for p in cluster.pods("app=pf") if running_ready(p)]) == 2, timeout=120,
               what="pf pods ready")
    return cluster


def test_port_forward_to_a_service_serves_the_host(applied):
    pods = {p["metadata"]["name"] for p in applied.pods("app=pf")}
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", applied.status["kubeconfig"], "port-forward", "svc/pfsvc", ":80"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(m.group(1))
        # kubectl picked one pod of the Service and maps the service port to its targetPort
        answers = {urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=10).read().decode()
                   for _ in range(3)}
        assert len(answers) == 1 and answers <= pods, (answers, pods)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_run_interactive_with_stdin_piped(applied):
    res = kubectl(applied, "run", "once", "-i", "--rm", "--restart=Never", "--image=busybox", "--",
                  "sh", "-c", "read name; echo hello-$name", stdin="cluster\n", check=False, timeout=120)
    assert res.returncode == 0 and "hello-cluster" in res.stdout, (res.returncode, res.stdout, res.stderr)
    assert 'pod "once" deleted' in res.stdout + res.stderr
    assert kubectl(applied, "get", "pod", "once", check=False).returncode == 1


def test_cp_round_trip(applied, tmp_path):
    pod = applied.pods("app=pf")[0]["metadata"]["name"]
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(200_000))
    kubectl(applied, "cp", str(src), f"{pod}:/tmp/copy.bin")  # into the container's own filesystem
    back = tmp_path / "back.bin"
    kubectl(applied, "cp", f"{pod}:/tmp/copy.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


def test_logs_previous_after_a_restart(applied):
    def restarted():
        pod = json.loads(kubectl(applied, "get", "pod", "crashy", "-o", "json").stdout)
        statuses = pod["status"].get("containerStatuses") or []
        return statuses and statuses[0].get("restartCount", 0) >= 1
    wait_until(restarted, timeout=90, what="crashy restarted")
    previous = kubectl(applied, "logs", "crashy", "--previous").stdout
    assert re.fullmatch(r"run-[0-9a-f-]{36}\n", previous), previous
    current = wait_until(lambda: kubectl(applied, "logs", "crashy", "--timestamps").stdout, timeout=30,
                         what="the current instance's log")
    assert current != previous and re.fullmatch(r"\S+Z run-[0-9a-f-]{36}\n", current), current

