"""kubectl exec's errors that need no node agent: what the API server answers before the
WebSocket upgrade (and again to kubectl's SPDY fallback), and an agent that cannot be reached
after it. (kubectl exec with real pods: tests/nodeagent/test_exec_stream.py.)"""
from __future__ import annotations

from cluster.procs import free_port
from tests.compat.conftest import Kubectl

NODE = """\
apiVersion: v1
kind: Node
metadata: {name: n1}
"""

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: unbound}
spec:
  containers: [{name: c, image: busybox}]
"""


def test_exec_errors(kubectl: Kubectl):
    kubectl("apply", "-f", str(kubectl.write("node.yaml", NODE)))
    port = free_port()
    kubectl("patch", "node", "n1", "--subresource=status", "--type=merge", "-p",
            '{"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], '
            f'"daemonEndpoints": {{"kubeletEndpoint": {{"Port": {port}}}}}}}}}')
    kubectl("apply", "-f", str(kubectl.write("pods.yaml", PODS)))

    r = kubectl("exec", "nope", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): pods "nope" not found\n')
    r = kubectl("exec", "web", "-c", "zzz", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (1, "Error from server (BadRequest): container zzz is not valid for pod web\n")
    r = kubectl("exec", "unbound", "--", "true", check=False)
    assert r.returncode == 1 and r.stderr.startswith("Error from server (ServiceUnavailable): pods/exec is served "
                                                     "by the pod's node agent, and pod unbound does not have a host")
    r = kubectl("exec", "web", "--", "true", check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error: pods/exec is served by the pod's node agent: error dialing backend "
                               f"https://127.0.0.1:{port}"), r.stderr
