"""Pod features in a whole cluster, driven by the real kubectl: an init container writes a file
into an emptyDir that the app container then serves over HTTP, and a ConfigMap mounted as a
volume changes inside the running pod after `kubectl apply` of a new version (the node agent
rewrites the volume atomically on its resync, as the kubelet does), while the container's
environment keeps the value it started with."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Cluster, wait_until

KUBECTL = shutil.which("kubectl")
SERVE = ("import http.server, functools; http.server.ThreadingHTTPServer(('', 8080), functools.partial("
         "http.server.SimpleHTTPRequestHandler, directory='/var/lib/site')).serve_forever()")
FETCH = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/made.txt').read().decode(), end='')"


def config_map(version: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site", "namespace": "default"},
            "data": {"greeting": f"hello {version}", "mode": version}}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "featured", "namespace": "default"},
       "spec": {"volumes": [{"name": "site", "emptyDir": {}}, {"name": "config", "configMap": {"name": "site"}}],
                "initContainers": [{"name": "make-site", "image": "busybox",
                                    "command": ["sh", "-c", "echo made by $(WHO) > /var/lib/site/made.txt"],
                                    "env": [{"name": "WHO", "value": "init"}],
                                    "volumeMounts": [{"name": "site", "mountPath": "/var/lib/site"}]}],
                "containers": [{"name": "web", "image": "python:3.11", "command": ["python3", "-c", SERVE],
                                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "site",
                                                                                           "key": "mode"}}}],
                                "volumeMounts": [{"name": "site", "mountPath": "/var/lib/site"},
                                                 {"name": "config", "mountPath": "/etc/site", "readOnly": True}]}]}}


def kubectl(c: Cluster, tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([KUBECTL or "kubectl", "--kubeconfig", c.status["kubeconfig"], "--cache-dir",
                           str(tmp_path / "kube-cache"), *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def apply(c: Cluster, tmp_path: Path, *objs: dict) -> str:
    path = tmp_path / "objs.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    return kubectl(c, tmp_path, "apply", "-f", str(path)).stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_init_container_output_is_served_and_a_configmap_volume_follows_apply(cluster: Cluster,
                                                                              tmp_path: Path) -> None:
    applied = apply(cluster, tmp_path, config_map("v1"), POD)
    assert "configmap/site created" in applied and "pod/featured created" in applied

    def running() -> dict | None:
        pod = json.loads(kubectl(cluster, tmp_path, "get", "pod", "featured", "-o", "json").stdout)
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
        return pod if pod["status"].get("phase") == "Running" and ready else None

    pod = wait_until(running, timeout=120, what="the pod running")
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["ready"] is True
    row = kubectl(cluster, tmp_path, "get", "pod", "featured").stdout.splitlines()[1].split()
    assert row[:3] == ["featured", "1/1", "Running"], row

    served = wait_until(lambda: kubectl(cluster, tmp_path, "exec", "featured", "-c", "web", "--", "python3",
                                        "-c", FETCH, check=False).stdout, timeout=30, what="the served file")
    assert served == "made by init\n"

    def in_pod(*command: str) -> str:
        return kubectl(cluster, tmp_path, "exec", "featured", "--", *command).stdout

    assert in_pod("cat", "/etc/site/greeting") == "hello v1"
    assert in_pod("sh", "-c", "echo $MODE") == "v1\n"
    assert "configmap/site configured" in apply(cluster, tmp_path, config_map("v2"))
    wait_until(lambda: in_pod("cat", "/etc/site/greeting") == "hello v2", timeout=150, interval=2,
               what="the new ConfigMap in the pod")
    assert in_pod("sh", "-c", "readlink /etc/site/..data; ls /etc/site").split("\n")[1:3] == ["greeting", "mode"]
    assert in_pod("sh", "-c", "echo $MODE") == "v1\n"  # the environment is fixed when the container starts
    kubectl(cluster, tmp_path, "delete", "pod", "featured", "--wait=true", "--timeout=60s")
