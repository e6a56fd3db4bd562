"""The RBAC authorizer: who may do what, as kube's RBAC decides it (tables), the reason it
gives, and that its indexes and remembered decisions follow the RBAC objects as they change."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from services.apiserver.authz import Attributes, Verdict
from services.apiserver.authz.rbac import RBACAuthorizer
from services.apiserver.registry.interfaces import UserInfo
from tests.apiserver.authz.policy import (
    binding,
    caches_over,
    cluster_binding,
    cluster_role,
    group,
    role,
    rule,
    sa,
    stored,
    user,
)

JANE = UserInfo("jane", groups=("system:authenticated",))
DEVS = UserInfo("bob", groups=("devs", "system:authenticated"))
WEB_SA = UserInfo("system:serviceaccount:team:web",
                  groups=("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"))

POLICY = stored(
    (R.CLUSTERROLES, cluster_role("pod-reader", rule(["get", "list", "watch"], resources=["pods"]))),
    (R.CLUSTERROLES, cluster_role("scaler", rule(["update", "patch"], ["apps"], ["*/scale"]))),
    (R.CLUSTERROLES, cluster_role("one-config", rule(["get", "update"], resources=["configmaps"],
                                                     names=["app-config"]))),
    (R.CLUSTERROLES, cluster_role("metrics", rule(["get"], urls=["/metrics", "/logs/*"]))),
    (R.CLUSTERROLES, cluster_role("everything", rule(["*"], ["*"], ["*"]))),
    (R.CLUSTERROLES, cluster_role("logs", rule(["get"], resources=["pods/log"]))),
    (R.ROLES, role("team", "deployer", rule(["create", "delete"], ["apps"], ["deployments"]))),
    (R.CLUSTERROLEBINDINGS, cluster_binding("jane-reads-pods", "pod-reader", user("jane"))),
    (R.CLUSTERROLEBINDINGS, cluster_binding("devs-metrics", "metrics", group("devs"))),
    (R.CLUSTERROLEBINDINGS, cluster_binding("dangling", "no-such-role", group("devs"))),
    (R.ROLEBINDINGS, binding("team", "devs-deploy", "Role", "deployer", group("devs"))),
    (R.ROLEBINDINGS, binding("team", "devs-scale", "ClusterRole", "scaler", group("devs"))),
    (R.ROLEBINDINGS, binding("team", "web-config", "ClusterRole", "one-config", sa("web"))),
    (R.ROLEBINDINGS, binding("other", "web-all", "ClusterRole", "everything", sa("web", "team"))),
    (R.ROLEBINDINGS, binding("team", "web-logs-elsewhere", "ClusterRole", "logs", sa("web", "other"))),
)


def res(user: UserInfo, verb: str, resource: str, *, ns: str = "", group: str = "", name: str = "",
        sub: str = "") -> Attributes:
    return Attributes(user=user, verb=verb, namespace=ns, api_group=group, resource=resource,
                      subresource=sub, name=name)


def url(user: UserInfo, verb: str, path: str) -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


CASES = [
    ("cluster binding: user reads pods anywhere", res(JANE, "list", "pods", ns="team"), True),
    ("cluster binding: user reads pods across namespaces", res(JANE, "watch", "pods"), True),
    ("cluster binding: not another verb", res(JANE, "delete", "pods", ns="team", name="x"), False),
    ("cluster binding: not a subresource of the resource",
     res(JANE, "get", "pods", ns="team", name="x", sub="log"), False),
    ("cluster binding: not another group's resource of that name",
     res(JANE, "get", "pods", group="metrics.k8s.io"), False),
    ("not another user", res(UserInfo("janet"), "list", "pods", ns="team"), False),
    ("role binding: group in its namespace", res(DEVS, "create", "deployments", ns="team", group="apps"), True),
    ("role binding: not in another namespace", res(DEVS, "create", "deployments", ns="other", group="apps"), False),
    ("role binding: not cluster-wide", res(DEVS, "create", "deployments", group="apps"), False),
    ("role binding to a ClusterRole: only its namespace",
     res(DEVS, "patch", "deployments", ns="team", group="apps", name="d", sub="scale"), True),
    ("*/scale: every resource's scale",
     res(DEVS, "update", "replicasets", ns="team", group="apps", name="r", sub="scale"), True),
    ("*/scale: not the resource itself", res(DEVS, "update", "replicasets", ns="team", group="apps", name="r"), False),
    ("*/scale: not another group",
     res(DEVS, "update", "deployments", ns="team", group="extensions", name="d", sub="scale"), False),
    ("resourceNames: that name", res(WEB_SA, "get", "configmaps", ns="team", name="app-config"), True),
    ("resourceNames: not another name", res(WEB_SA, "get", "configmaps", ns="team", name="other"), False),
    ("resourceNames: never a list (no name)", res(WEB_SA, "list", "configmaps", ns="team"), False),
    ("ServiceAccount subject without namespace is the binding's",
     res(WEB_SA, "update", "configmaps", ns="team", name="app-config"), True),
    ("ServiceAccount subject with its namespace, bound elsewhere",
     res(WEB_SA, "delete", "secrets", ns="other", name="s"), True),
    ("ServiceAccount: the binding's namespace only", res(WEB_SA, "delete", "secrets", ns="team", name="s"), False),
    ("ServiceAccount of another namespace is another user",
     res(UserInfo("system:serviceaccount:other:web"), "get", "pods", ns="team", name="x", sub="log"), True),
    ("ServiceAccount: not by group",
     res(UserInfo("web", groups=("system:serviceaccounts:team",)), "get", "configmaps", ns="team",
         name="app-config"), False),
    ("nonResourceURL exact", url(DEVS, "get", "/metrics"), True),
    ("nonResourceURL prefix *", url(DEVS, "get", "/logs/kube-apiserver.log"), True),
    ("nonResourceURL prefix covers the bare prefix", url(DEVS, "get", "/logs/"), True),
    ("nonResourceURL not a longer path", url(DEVS, "get", "/metricsx"), False),
    ("nonResourceURL: verb", url(DEVS, "post", "/metrics"), False),
    ("resource rules do not grant URLs", url(JANE, "get", "/api/v1/pods"), False),
    ("wildcards: every verb, group and resource",
     res(WEB_SA, "deletecollection", "widgets", ns="other", group="example.com"), True),
    ("wildcards: subresources too", res(WEB_SA, "create", "pods", ns="other", name="p", sub="exec"), True),
]


@pytest.mark.parametrize("attrs, allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_who_may_do_what(attrs: Attributes, allowed: bool) -> None:
    decision = RBACAuthorizer(caches_over(POLICY)).authorize(attrs)
    assert decision.allowed is allowed
    assert decision.verdict in (Verdict.ALLOW, Verdict.NO_OPINION)  # RBAC never denies


def test_an_allow_says_which_binding_as_kube_does() -> None:
    decision = RBACAuthorizer(caches_over(POLICY)).authorize(res(WEB_SA, "get", "configmaps", ns="team",
                                                                  name="app-config"))
    assert decision.reason == ('RBAC: allowed by RoleBinding "web-config/team" of ClusterRole '
                               '"one-config" to ServiceAccount "web/team"')


def test_a_refusal_names_the_roles_bindings_point_at_that_do_not_exist() -> None:
    decision = RBACAuthorizer(caches_over(POLICY)).authorize(res(DEVS, "get", "nodes", name="n"))
    assert not decision.allowed
    assert decision.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "no-such-role" not found'


def test_without_any_binding_there_is_no_reason() -> None:
    decision = RBACAuthorizer(caches_over(POLICY)).authorize(res(JANE, "get", "nodes", name="n"))
    assert decision.verdict is Verdict.NO_OPINION and decision.reason == ""


def test_decisions_follow_the_rbac_objects_and_the_index_is_rebuilt_only_when_they_change() -> None:
    storage = stored((R.CLUSTERROLES, cluster_role("pod-reader", rule(["get"], resources=["pods"]))))
    authorizer = RBACAuthorizer(caches_over(storage))
    ask = res(JANE, "get", "pods", ns="team", name="x")
    assert not authorizer.authorize(ask).allowed
    for _ in range(100):
        authorizer.authorize(ask)
    assert authorizer.rebuilds == 1
    more = stored((R.CLUSTERROLEBINDINGS, cluster_binding("b", "pod-reader", user("jane"))))
    key, obj = next(iter(more.objects.items()))
    storage.objects[key] = obj
    storage.revision += 1
    assert authorizer.authorize(ask).allowed
    assert authorizer.rebuilds == 2
    del storage.objects[key]
    storage.revision += 1
    assert not authorizer.authorize(ask).allowed


def test_remembered_decisions_are_bounded() -> None:
    authorizer = RBACAuthorizer(caches_over(POLICY), cache_size=10)
    for i in range(25):
        authorizer.authorize(res(JANE, "get", "pods", ns="team", name=f"p{i}"))
    assert len(authorizer._decisions) <= 10


def test_rules_for_a_user_are_the_rules_of_every_role_bound_to_it() -> None:
    rules, errors = RBACAuthorizer(caches_over(POLICY)).rules_for(DEVS, "team")
    assert sorted(r.source["verbs"][0] for r in rules) == ["create", "get", "update"]
    assert errors == ['clusterrole.rbac.authorization.k8s.io "no-such-role" not found']
