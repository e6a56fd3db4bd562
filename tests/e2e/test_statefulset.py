"""A StatefulSet of three behind a headless Service in a real local cluster, driven by the real
kubectl: web-0, web-1, web-2 come up in order (each created only once the one before is
Running and Ready, by the node agents' readiness probes), each pod's hostname is its name,
and `kubectl rollout status` and `scale` work against the cluster's StatefulSet controller."""
from __future__ import annotations

import json
import textwrap
from datetime import datetime

from tests.e2e.harness import Cluster, run, running_ready, wait_until

MANIFEST = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata: {name: nginx, labels: {app: web}}
    spec:
      clusterIP: None
      selector: {app: web}
      ports: [{port: 8080, name: web}]
    ---
    apiVersion: apps/v1
    kind: StatefulSet
    metadata: {name: web}
    spec:
      serviceName: nginx
      replicas: 3
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: registry.k8s.io/e2e-test-images/agnhost:2.39
            args: ["netexec", "--http-port=8080"]
            ports: [{containerPort: 8080, name: web}]
            readinessProbe:
              httpGet: {path: /hostname, port: 8080}
              periodSeconds: 1
    """)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ready_since(pod: dict) -> datetime:
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return _time(cond["lastTransitionTime"])


def test_a_statefulset_behind_a_headless_service_comes_up_in_order(cluster: Cluster, tmp_path) -> None:
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    out = run(*kc, "apply", "-f", str(manifest)).stdout
    assert "service/nginx created" in out and "statefulset.apps/web created" in out
    status = run(*kc, "rollout", "status", "sts/web", "--timeout=180s", timeout=200).stdout
    assert "partitioned roll out complete: 3 new pods have been updated..." in status

    pods = {p["metadata"]["name"]: p for p in json.loads(
        run(*kc, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]}
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    assert all(running_ready(p) for p in pods.values())
    for before, after in (("web-0", "web-1"), ("web-1", "web-2")):
        # created no earlier than its predecessor turned Ready (timestamps are whole seconds)
        assert _time(pods[after]["metadata"]["creationTimestamp"]) >= _ready_since(pods[before])
    for name, pod in pods.items():
        assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "nginx"
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == name
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == name[-1]
    assert {p["spec"]["nodeName"] for p in pods.values()} <= {n["name"] for n in cluster.status["nodes"]}

    # each pod answers with its own name: the node agent gave it spec.hostname
    ip = pods["web-2"]["status"]["podIP"]
    got = wait_until(lambda: run(*kc, "exec", "web-0", "--", "curl", "-sS", "-m", "2",
                                 f"{ip}:8080/hostname", check=False).stdout.strip() == "web-2",
                     timeout=30, what="web-2's hostname over its pod IP")
    assert got

    table = run(*kc, "get", "sts", "web").stdout.split()
    assert table[:4] == ["NAME", "READY", "AGE", "web"] and table[4] == "3/3"
    assert "statefulset.apps/web scaled" in run(*kc, "scale", "sts/web", "--replicas=1").stdout
    wait_until(lambda: sorted(p["metadata"]["name"] for p in json.loads(
        run(*kc, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]) == ["web-0"],
        timeout=120, what="scale down to web-0")
    run(*kc, "delete", "sts", "web")
    wait_until(lambda: json.loads(run(*kc, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"] == [],
               timeout=120, what="the garbage collector deleting web-0 with its set")
