"""A DaemonSet in a real 2-node cluster, driven by the real kubectl: a pod on each node, a
node that joins while it runs gets its pod (a Node object: the launcher starts nodes only at
`up`), and `kubectl rollout status/history/undo ds` over a rolling update."""
from __future__ import annotations

import json
import time

from tests.e2e.harness import Cluster, run, running_ready, wait_until

MANIFEST = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: default
spec:
  selector:
    matchLabels: {app: node-agent}
  template:
    metadata:
      labels: {app: node-agent}
    spec:
      containers:
        - name: agent
          image: busybox:1.35
          command: ["sleep", "3600"]
"""


def test_a_daemonset_with_kubectl(cluster: Cluster, tmp_path) -> None:
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    manifest = tmp_path / "ds.yaml"
    manifest.write_text(MANIFEST)
    assert run(*kc, "apply", "-f", str(manifest)).stdout.strip() == "daemonset.apps/node-agent created"
    out = run(*kc, "rollout", "status", "ds/node-agent", "--timeout=120s", timeout=150).stdout
    assert 'daemon set "node-agent" successfully rolled out' in out
    nodes = sorted(n["name"] for n in cluster.status["nodes"])
    pods = cluster.pods("app=node-agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == nodes and all(map(running_ready, pods))
    table = run(*kc, "get", "ds", "node-agent").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                "NODE", "SELECTOR", "AGE"]
    assert table[1].split()[:7] == ["node-agent", "2", "2", "2", "2", "2", "<none>"]

    # a node joins: its pod is created and the scheduler binds it there
    joined = tmp_path / "node.json"
    joined.write_text(json.dumps({"apiVersion": "v1", "kind": "Node",
                                  "metadata": {"name": "joined", "labels": {"kubernetes.io/hostname": "joined"}}}))
    run(*kc, "apply", "-f", str(joined))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run(*kc, "patch", "node", "joined", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "lastHeartbeatTime": now, "lastTransitionTime": now}]}}))
    wait_until(lambda: "joined" in {p["spec"].get("nodeName") for p in cluster.pods("app=node-agent")},
               timeout=60, what="a pod bound to the node that joined")
    ds = json.loads(run(*kc, "get", "ds", "node-agent", "-o", "json").stdout)
    assert ds["status"]["desiredNumberScheduled"] == 3
    run(*kc, "delete", "node", "joined")  # no agent runs it: leave before the rollout
    wait_until(lambda: json.loads(run(*kc, "get", "ds", "node-agent", "-o", "json").stdout)
               ["status"]["desiredNumberScheduled"] == 2, timeout=60, what="the node's departure")

    # a rolling update, its history, and back
    run(*kc, "set", "image", "ds/node-agent", "agent=busybox:latest")
    out = run(*kc, "rollout", "status", "ds/node-agent", "--timeout=180s", timeout=200).stdout
    assert 'daemon set "node-agent" successfully rolled out' in out
    assert {p["spec"]["containers"][0]["image"] for p in cluster.pods("app=node-agent")} == {"busybox:latest"}
    history = run(*kc, "rollout", "history", "ds/node-agent").stdout.split()
    assert history[:4] == ["daemonset.apps/node-agent", "REVISION", "CHANGE-CAUSE", "1"] and "2" in history
    shown = run(*kc, "rollout", "history", "ds/node-agent", "--revision=1").stdout
    assert "busybox:1.35" in shown
    assert run(*kc, "rollout", "undo", "ds/node-agent").stdout.strip() == "daemonset.apps/node-agent rolled back"
    run(*kc, "rollout", "status", "ds/node-agent", "--timeout=180s", timeout=200)
    wait_until(lambda: {p["spec"]["containers"][0]["image"] for p in cluster.pods("app=node-agent")
                        if running_ready(p)} == {"busybox:1.35"}
               and len(cluster.pods("app=node-agent")) == 2, timeout=120, what="the undo's pods")
    revisions = run(*kc, "rollout", "history", "ds/node-agent").stdout.split()[3:]
    assert revisions == ["2", "<none>", "3", "<none>"]
    run(*kc, "delete", "ds", "node-agent")
    wait_until(lambda: cluster.pods("app=node-agent") == [] and
               run(*kc, "get", "controllerrevisions", "-o", "name").stdout.strip() == "",
               timeout=90, what="the DaemonSet's pods and revisions gone")
