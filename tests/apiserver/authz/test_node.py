"""The Node authorizer: a kubelet reads the Secrets, ConfigMaps and claims of pods bound to
its node only, asks tokens only for their ServiceAccounts, keeps to its own lease, and has
kube's node rules for the rest (table)."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from services.apiserver.authz import Attributes
from services.apiserver.authz.node import NodeAuthorizer, pod_references
from services.apiserver.registry.interfaces import UserInfo
from tests.apiserver.authz.policy import caches_over, stored

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
N2 = UserInfo("system:node:n2", groups=("system:nodes", "system:authenticated"))


def pod(name: str, node: str | None, **spec) -> tuple:
    body = {"metadata": {"name": name, "namespace": "team"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return (R.PODS, body)


WEB = pod("web", "n1", serviceAccountName="web-sa", imagePullSecrets=[{"name": "pull"}],
          volumes=[{"name": "s", "secret": {"secretName": "tls"}},
                   {"name": "c", "configMap": {"name": "conf"}},
                   {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                                           {"configMap": {"name": "kube-root-ca.crt"}}]}},
                   {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
          containers=[{"name": "c", "image": "busybox",
                       "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                       "envFrom": [{"configMapRef": {"name": "env-conf"}}]}])
PENDING = pod("pending", None, volumes=[{"name": "s", "secret": {"secretName": "pending-secret"}}])
POLICY = stored(WEB, PENDING)


def res(user, verb, resource, *, ns="team", name="", sub="", group="") -> Attributes:
    return Attributes(user=user, verb=verb, namespace=ns, api_group=group, resource=resource,
                      subresource=sub, name=name)


CASES = [
    ("its pod's secret volume", res(N1, "get", "secrets", name="tls"), True),
    ("its pod's image pull secret", res(N1, "get", "secrets", name="pull"), True),
    ("its pod's projected secret", res(N1, "get", "secrets", name="proj-secret"), True),
    ("its pod's env secret", res(N1, "watch", "secrets", name="env-secret"), True),
    ("its pod's configmap", res(N1, "get", "configmaps", name="conf"), True),
    ("its pod's projected configmap", res(N1, "list", "configmaps", name="kube-root-ca.crt"), True),
    ("its pod's envFrom configmap", res(N1, "get", "configmaps", name="env-conf"), True),
    ("its pod's claim", res(N1, "get", "persistentvolumeclaims", name="data"), True),
    ("another node's pod's secret", res(N2, "get", "secrets", name="tls"), False),
    ("a secret no pod uses", res(N1, "get", "secrets", name="other"), False),
    ("a secret of an unscheduled pod", res(N1, "get", "secrets", name="pending-secret"), False),
    ("same name in another namespace", res(N1, "get", "secrets", ns="other", name="tls"), False),
    ("no list of all secrets", res(N1, "list", "secrets"), False),
    ("no write of a secret it may read", res(N1, "update", "secrets", name="tls"), False),
    ("token for its pod's ServiceAccount", res(N1, "create", "serviceaccounts", name="web-sa", sub="token"), True),
    ("no token for another ServiceAccount", res(N1, "create", "serviceaccounts", name="default", sub="token"), False),
    ("no token from another node", res(N2, "create", "serviceaccounts", name="web-sa", sub="token"), False),
    ("no read of ServiceAccounts", res(N1, "get", "serviceaccounts", name="web-sa"), False),
    ("its lease", res(N1, "update", "leases", ns="kube-node-lease", name="n1", group="coordination.k8s.io"), True),
    ("not another node's lease",
     res(N1, "update", "leases", ns="kube-node-lease", name="n2", group="coordination.k8s.io"), False),
    ("node rules: register a Node", res(N1, "create", "nodes", ns=""), True),
    ("node rules: read Nodes", res(N1, "watch", "nodes", ns=""), True),
    ("node rules: its Node's status", res(N1, "patch", "nodes", ns="", name="n1", sub="status"), True),
    ("node rules: pods", res(N1, "list", "pods", ns=""), True),
    ("node rules: pod status", res(N1, "patch", "pods", name="web", sub="status"), True),
    ("node rules: delete pods", res(N1, "delete", "pods", name="web"), True),
    ("node rules: events", res(N1, "create", "events"), True),
    ("node rules: services", res(N1, "list", "services", ns=""), True),
    ("node rules: not deployments", res(N1, "list", "deployments", group="apps"), False),
    ("node rules: not pod exec", res(N1, "create", "pods", name="web", sub="exec"), False),
    ("not a node: no opinion", res(UserInfo("system:node:n1"), "get", "secrets", name="tls"), False),
]


@pytest.mark.parametrize("attrs, allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_a_node_may_do(attrs: Attributes, allowed: bool) -> None:
    assert NodeAuthorizer(caches_over(POLICY)).authorize(attrs).allowed is allowed


def test_a_refusal_says_there_is_no_relationship() -> None:
    decision = NodeAuthorizer(caches_over(POLICY)).authorize(res(N2, "get", "secrets", name="tls"))
    assert decision.reason == "no relationship found between node 'n2' and this object"


def test_a_node_without_a_name_is_unknown() -> None:
    decision = NodeAuthorizer(caches_over(POLICY)).authorize(
        res(UserInfo("system:node:", groups=("system:nodes",)), "get", "pods", name="x"))
    assert not decision.allowed and decision.reason == 'unknown node for user "system:node:"'


def test_the_graph_follows_the_pods() -> None:
    storage = stored(pod("a", "n1"))
    authorizer = NodeAuthorizer(caches_over(storage))
    ask = res(N2, "get", "secrets", name="tls")
    assert not authorizer.authorize(ask).allowed
    _, body = pod("b", "n2", volumes=[{"name": "s", "secret": {"secretName": "tls"}}])
    more = stored((R.PODS, body))
    storage.objects.update(more.objects)
    storage.revision += 1
    assert authorizer.authorize(ask).allowed


def test_pod_references() -> None:
    assert pod_references(WEB[1]) == {
        ("serviceaccount", "web-sa"), ("secret", "pull"), ("secret", "tls"), ("configmap", "conf"),
        ("secret", "proj-secret"), ("configmap", "kube-root-ca.crt"), ("pvc", "data"),
        ("secret", "env-secret"), ("configmap", "env-conf")}
