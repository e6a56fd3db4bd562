"""Unmodified kubectl against RBAC: `auth can-i` (also --list and --as, which impersonates),
`auth whoami`, `create rolebinding`, and the RBAC kinds' columns."""
from __future__ import annotations

import time

from tests.compat.conftest import Kubectl, rows


def can_i(kubectl: Kubectl, *args: str) -> tuple[int, str]:
    proc = kubectl("auth", "can-i", *args, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert proc.returncode in (0, 1) and not errors, proc.stderr
    return proc.returncode, proc.stdout.strip()


def test_can_i_and_whoami(kubectl: Kubectl) -> None:
    assert can_i(kubectl, "delete", "nodes") == (0, "yes")
    assert can_i(kubectl, "list", "pods", "--as", "jane") == (1, "no")
    assert can_i(kubectl, "create", "selfsubjectaccessreviews.authorization.k8s.io", "--as", "jane") == (0, "yes")
    who = rows(kubectl("auth", "whoami", "--as", "jane", "--as-group", "devs").stdout)
    assert who == [["ATTRIBUTE", "VALUE"], ["Username", "jane"], ["Groups", "[devs system:authenticated]"]]

    kubectl("create", "rolebinding", "jane-edit", "--clusterrole", "edit", "--user", "jane", "-n", "default")
    for _ in range(50):
        if can_i(kubectl, "create", "deployments.apps", "-n", "default", "--as", "jane")[0] == 0:
            break
        time.sleep(0.1)
    assert can_i(kubectl, "create", "deployments.apps", "-n", "default", "--as", "jane") == (0, "yes")
    assert can_i(kubectl, "create", "deployments.apps", "-n", "kube-system", "--as", "jane") == (1, "no")
    assert can_i(kubectl, "create", "pods/exec", "-n", "default", "--as", "jane") == (0, "yes")

    listing = rows(kubectl("auth", "can-i", "--list", "-n", "default", "--as", "jane").stdout)
    assert listing[0] == ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]
    by_resource = {r[0]: r for r in listing[1:]}
    assert "deployments.apps" in by_resource and "create" in by_resource["deployments.apps"][-1]


def test_rbac_kinds_in_kubectl_get(kubectl: Kubectl) -> None:
    out = rows(kubectl("get", "clusterroles", "cluster-admin").stdout)
    assert out[0] == ["NAME", "CREATED AT"] and out[1][0] == "cluster-admin"
    kubectl("create", "rolebinding", "mixed", "--clusterrole", "view", "--user", "jane", "--group", "devs",
            "--serviceaccount", "default:builder", "-n", "default")
    out = rows(kubectl("get", "rolebindings", "-n", "default", "-o", "wide").stdout)
    assert out[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    (mixed,) = [r for r in out[1:] if r[0] == "mixed"]
    assert mixed[1] == "ClusterRole/view" and mixed[3:] == ["jane", "devs", "default/builder"]
    err = kubectl("patch", "rolebinding", "mixed", "-n", "default", "--type", "merge",
                  "-p", '{"roleRef":{"name":"edit"}}', check=False)
    assert err.returncode != 0 and "cannot change roleRef" in err.stderr


RBAC_YAML = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
"""


def test_auth_reconcile_creates_then_adds_rules(kubectl: Kubectl) -> None:
    path = str(kubectl.write("rbac.yaml", RBAC_YAML))
    kubectl("auth", "reconcile", "-f", path)
    kubectl.write("rbac.yaml", RBAC_YAML.replace("verbs: [get, list]", "verbs: [get, list, watch]"))
    kubectl("auth", "reconcile", "-f", path)
    role = kubectl.json("get", "role", "pod-reader", "-n", "default")
    verbs = sorted(v for rule in role["rules"] for v in rule["verbs"])
    assert verbs == ["get", "list", "watch"]
    for _ in range(50):
        if can_i(kubectl, "watch", "pods", "-n", "default", "--as", "jane")[0] == 0:
            break
        time.sleep(0.1)
    assert can_i(kubectl, "watch", "pods", "-n", "default", "--as", "jane") == (0, "yes")
