"""A typical application applied in one go with the real kubectl, as a user brings one to a new
cluster: a StatefulSet database behind a headless Service, a web Deployment configured by a
ConfigMap (a file mounted from it, its keys as environment) behind a LoadBalancer Service, a
migration Job that finds the database's first member by its stable DNS name, and a log
DaemonSet on every node. Each kind comes up through its own controller; the web answers from
the host through the load balancer's address."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Cluster, wait_until

KUBECTL = shutil.which("kubectl")
NS = "shop"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.39"
SERVE = ("import http.server, functools; http.server.ThreadingHTTPServer(('', 8080), functools.partial("
         "http.server.SimpleHTTPRequestHandler, directory='/srv/site')).serve_forever()")
MIGRATE = ("import os, socket, urllib.request; host = os.environ['DB_HOST']; "
           "ip = socket.gethostbyname(host); "
           "name = urllib.request.urlopen(f'http://{host}:5432/hostname', timeout=5).read().decode(); "
           "print(f'migrated {name} at {ip}', flush=True)")
LOGGER = "while true; do echo \"log-agent on $NODE_NAME\"; sleep 2; done"


def manifests(greeting: str) -> list[dict]:
    meta = {"namespace": NS}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", **meta},
         "data": {"DB_HOST": f"db-0.db.{NS}.svc.cluster.local", "index.html": f"{greeting}\n"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", **meta},
         "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "sql", "port": 5432}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", **meta},
         "spec": {"serviceName": "db", "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                  "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{
                      "name": "db", "image": AGNHOST, "args": ["netexec", "--http-port=5432"],
                      "ports": [{"name": "sql", "containerPort": 5432}],
                      "readinessProbe": {"httpGet": {"path": "/hostname", "port": 5432}, "periodSeconds": 1}}]}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", **meta},
         "spec": {"backoffLimit": 4, "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{
             "name": "migrate", "image": "python:3.11", "command": ["python3", "-c", MIGRATE],
             "env": [{"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "web-config",
                                                                           "key": "DB_HOST"}}}]}]}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", **meta},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "volumes": [{"name": "site", "configMap": {"name": "web-config", "items": [
                          {"key": "index.html", "path": "index.html"}]}}],
                      "containers": [{"name": "web", "image": "python:3.11", "command": ["python3", "-c", SERVE],
                                      "envFrom": [{"configMapRef": {"name": "web-config"}}],
                                      "ports": [{"containerPort": 8080}],
                                      "volumeMounts": [{"name": "site", "mountPath": "/srv/site"}],
                                      "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                         "periodSeconds": 1}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", **meta},
         "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "log-agent", **meta},
         "spec": {"selector": {"matchLabels": {"app": "log-agent"}},
                  "template": {"metadata": {"labels": {"app": "log-agent"}}, "spec": {"containers": [{
                      "name": "agent", "image": "busybox", "command": ["sh", "-c", LOGGER],
                      "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}}}},
    ]


def kubectl(c: Cluster, tmp_path: Path, *args: str, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run([KUBECTL or "kubectl", "--kubeconfig", c.status["kubeconfig"], "--cache-dir",
                           str(tmp_path / "kube-cache"), *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc.stdout


def curl(url: str) -> str:
    res = subprocess.run(["curl", "-sS", "-m", "2", url], capture_output=True, text=True, timeout=10)
    return res.stdout if res.returncode == 0 else ""


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_a_typical_application_applies_and_runs(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump_all(manifests("welcome to the shop")))
    applied = kubectl(cluster, tmp_path, "apply", "-f", str(path))
    for made in ("namespace/shop", "configmap/web-config", "service/db", "statefulset.apps/db", "job.batch/migrate",
                 "deployment.apps/web", "service/web", "daemonset.apps/log-agent"):
        assert f"{made} created" in applied, applied

    for workload in ("statefulset/db", "deployment/web", "daemonset/log-agent"):
        kubectl(cluster, tmp_path, "-n", NS, "rollout", "status", workload, "--timeout=180s", timeout=200)
    kubectl(cluster, tmp_path, "-n", NS, "wait", "--for=condition=complete", "job/migrate", "--timeout=120s",
            timeout=140)

    pods = json.loads(kubectl(cluster, tmp_path, "-n", NS, "get", "pods", "-o", "json"))["items"]
    by_name = {p["metadata"]["name"]: p for p in pods}
    assert {"db-0", "db-1", "db-2"} <= set(by_name)
    # the Job reached db-0 by its stable name, through the cluster DNS, and read its hostname
    assert kubectl(cluster, tmp_path, "-n", NS, "logs", "job/migrate").strip() == \
        f"migrated db-0 at {by_name['db-0']['status']['podIP']}"

    # one log agent per node, each knowing its node from the downward API
    agents = [p for p in pods if p["metadata"].get("labels", {}).get("app") == "log-agent"]
    nodes = {n["name"] for n in cluster.status["nodes"]}
    assert sorted(p["spec"]["nodeName"] for p in agents) == sorted(nodes)
    for agent in agents:
        line = wait_until(lambda a=agent: kubectl(cluster, tmp_path, "-n", NS, "logs", a["metadata"]["name"],
                                                  "--tail=1").strip(), timeout=20, what="a log line")
        assert line == f"log-agent on {agent['spec']['nodeName']}"

    # the web's environment comes from the ConfigMap, and its page from the mounted file
    web = next(name for name in by_name if name.startswith("web-"))
    assert kubectl(cluster, tmp_path, "-n", NS, "exec", web, "--", "sh", "-c", "echo $DB_HOST").strip() == \
        f"db-0.db.{NS}.svc.cluster.local"

    def ingress_ip() -> str | None:
        svc = json.loads(kubectl(cluster, tmp_path, "-n", NS, "get", "svc", "web", "-o", "json"))
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        return ingress[0]["ip"] if ingress else None
    ip = wait_until(ingress_ip, timeout=60, what="the load balancer's address")
    assert wait_until(lambda: curl(f"http://{ip}/"), timeout=60, what="the web from the host") == \
        "welcome to the shop\n"

    # a new version of the ConfigMap reaches the running pods' mounted file
    path.write_text(yaml.safe_dump_all(manifests("the shop has moved")))
    assert "configmap/web-config configured" in kubectl(cluster, tmp_path, "apply", "-f", str(path))
    wait_until(lambda: curl(f"http://{ip}/") == "the shop has moved\n", timeout=150, interval=2,
               what="the new page behind the load balancer")

    kubectl(cluster, tmp_path, "delete", "namespace", NS, "--wait=false")
