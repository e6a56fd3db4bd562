"""Unmodified kubectl meeting Pod Security Admission: the refusal it prints, the warnings it
prints for a workload, and `kubectl label` of a namespace's levels."""
from __future__ import annotations

from tests.compat.conftest import Kubectl

HOST_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: host}
spec:
  hostNetwork: true
  containers: [{name: app, image: busybox}]
"""


def test_kubectl_prints_the_refusal_and_the_warnings(kubectl: Kubectl) -> None:
    kubectl.write("pod.yaml", HOST_POD)
    proc = kubectl("apply", "-f", "pod.yaml", check=False)
    assert proc.returncode != 0
    assert ('Error from server (Forbidden): error when creating "pod.yaml": pods "host" is forbidden: '
            'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)') in proc.stderr

    kubectl("create", "namespace", "team")
    kubectl("label", "namespace", "team", "pod-security.kubernetes.io/warn=restricted")
    proc = kubectl("-n", "team", "create", "deployment", "web", "--image=busybox")
    assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' \
        in proc.stderr

    kubectl("label", "namespace", "team", "pod-security.kubernetes.io/enforce=privileged",
            "pod-security.kubernetes.io/warn=privileged", "--overwrite")
    kubectl("-n", "team", "apply", "-f", "pod.yaml")
    proc = kubectl("label", "namespace", "team", "pod-security.kubernetes.io/enforce=baseline",
                   "--overwrite")
    assert 'Warning: existing pods in namespace "team" violate the new PodSecurity enforce level ' \
           '"baseline:latest"' in proc.stderr
    assert "Warning: host: host namespaces" in proc.stderr
