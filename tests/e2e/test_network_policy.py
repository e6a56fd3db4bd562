"""NetworkPolicy in the whole cluster: every node's policy agent isolates the pods a policy
selects. In a namespace of its own (the e2e package shares one cluster)."""
from __future__ import annotations

import json

from tests.e2e.harness import Cluster, run, running_ready, wait_until

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: np}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: np}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.k8s.io/e2e-test-images/agnhost:2.39
          args: ["netexec", "--http-port=8080"]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: np}
spec: {selector: {app: web}, ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: insider, namespace: np}
spec: {containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: npoutsider, namespace: default}
spec: {containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]}
"""

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: same-namespace-only, namespace: np}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {}}], ports: [{port: http}]}]
"""


def test_a_policy_lets_only_its_namespace_in(cluster: Cluster, tmp_path) -> None:
    manifest = tmp_path / "np.yaml"
    manifest.write_text(MANIFEST)
    cluster.mkctl("apply", "-f", str(manifest))
    wait_until(lambda: (lambda ps: len(ps) == 2 and all(map(running_ready, ps)))(
        json.loads(cluster.mkctl("get", "pods", "-n", "np", "-l", "app=web", "-o", "json").stdout)["items"]),
        timeout=120, what="2 ready web pods")
    for ns, name in (("np", "insider"), ("default", "npoutsider")):
        wait_until(lambda ns=ns, name=name: running_ready(json.loads(
            cluster.mkctl("get", "pod", name, "-n", ns, "-o", "json").stdout)), timeout=60, what=name)

    def answer(ns: str, pod: str) -> str:
        res = cluster.mkctl("exec", "-n", ns, pod, "--", "timeout", "3", "wget", "-qO-",
                            "http://web.np.svc.cluster.local:8080/hostname", check=False)
        return res.stdout.strip()
    assert wait_until(lambda: answer("default", "npoutsider"), timeout=30, what="open before the policy")

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    cluster.mkctl("apply", "-f", str(policy))
    wait_until(lambda: answer("default", "npoutsider") == "", timeout=15, what="the outsider cut off")
    assert answer("np", "insider").startswith("web-"), "its own namespace still gets in, through the Service"
    nodes = json.loads(cluster.mkctl("get", "nodes", "-o", "json").stdout)["items"]
    for node in nodes:
        table = run("ip", "netns", "exec", node["metadata"]["name"], "nft", "list", "table", "ip",
                    "minicluster-netpol").stdout
        assert "ct state established,related accept" in table

    cluster.mkctl("delete", "-f", str(policy))
    wait_until(lambda: answer("default", "npoutsider").startswith("web-"), timeout=15, what="open again")
    cluster.mkctl("delete", "pod", "npoutsider", "-n", "default")
    cluster.mkctl("delete", "namespace", "np", timeout=120)


FIRST_PACKET = """
apiVersion: v1
kind: Namespace
metadata: {name: npfirst}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress, namespace: npfirst}
spec: {podSelector: {matchLabels: {app: probe}}, policyTypes: [Egress]}
---
apiVersion: v1
kind: Pod
metadata: {name: target, namespace: npfirst}
spec:
  containers:
    - name: c
      image: registry.k8s.io/e2e-test-images/agnhost:2.39
      args: ["netexec", "--http-port=8080"]
      readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
"""

# the container's very first act: one request to the target, before anything else could wait
FIRST_ACT = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: npfirst, labels: {{app: {app}}}}}
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: busybox
      command:
        - sh
        - -c
        - "if timeout 2 wget -qO- http://{ip}:8080/hostname; then echo; echo PASSED; else echo BLOCKED; fi"
"""


def test_a_new_pods_first_packet_already_meets_its_policy(cluster: Cluster, tmp_path) -> None:
    """The node agent starts no container before the node's policy agent has the pod's new
    address in its table: a pod whose egress a policy denies cannot get even its first
    request out, while the same request from a pod no policy selects gets its answer."""
    manifest = tmp_path / "first.yaml"
    manifest.write_text(FIRST_PACKET)
    cluster.mkctl("apply", "-f", str(manifest))
    target = wait_until(lambda: (lambda p: p if running_ready(p) else None)(json.loads(
        cluster.mkctl("get", "pod", "target", "-n", "npfirst", "-o", "json").stdout)), timeout=120, what="target")
    ip = target["status"]["podIP"]
    pods = tmp_path / "pods.yaml"
    pods.write_text("---".join(FIRST_ACT.format(name=n, app=app, ip=ip) for n, app in
                               (("probe", "probe"), ("free", "free"))))
    cluster.mkctl("apply", "-f", str(pods))

    def finished(name: str) -> str:
        phase = json.loads(cluster.mkctl("get", "pod", name, "-n", "npfirst", "-o", "json").stdout)["status"].get(
            "phase")
        return cluster.mkctl("logs", name, "-n", "npfirst").stdout if phase in ("Succeeded", "Failed") else ""
    assert wait_until(lambda: finished("free"), timeout=60, what="free finished").split() == ["target", "PASSED"]
    probe = wait_until(lambda: finished("probe"), timeout=60, what="probe finished").split()
    assert probe[-1] == "BLOCKED" and "PASSED" not in probe  # (before it, the shell may say "Terminated")
    cluster.mkctl("delete", "namespace", "npfirst", timeout=120)
