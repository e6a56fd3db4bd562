"""RBAC through the API server over real etcd: the bootstrap policy at start, the RBAC kinds
served (Tables, roleRef immutable), the access reviews, and requests made as other users
through impersonation (`kubectl --as`): RBAC's 403s, escalation prevention, the Node
authorizer and NodeRestriction, each with kube's Status."""
from __future__ import annotations

import asyncio

RBAC = "/apis/rbac.authorization.k8s.io/v1"
AUTHZ = "/apis/authorization.k8s.io/v1"
G = "rbac.authorization.k8s.io"
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}


def jane() -> dict:
    return {"Impersonate-User": "jane"}


def node(name: str) -> dict:
    return {"Impersonate-User": f"system:node:{name}", "Impersonate-Group": "system:nodes"}


async def until_allowed(http, user: str, verb: str, resource: str, namespace: str = "", group: str = ""):
    """RBAC reads its objects from the watch caches: wait until a new binding is seen."""
    review = {"spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": {
        "verb": verb, "resource": resource, "namespace": namespace, "group": group}}}
    for _ in range(100):
        status, body = await http.post(f"{AUTHZ}/subjectaccessreviews", review)
        assert status == 201, body
        if body["status"]["allowed"]:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{user} never allowed to {verb} {resource}")


async def bind(http, namespace: str, name: str, role_kind: str, role: str, subject: dict) -> None:
    body = {"metadata": {"name": name}, "subjects": [subject],
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role}}
    status, created = await http.post(f"{RBAC}/namespaces/{namespace}/rolebindings", body)
    assert status == 201, created


async def test_the_bootstrap_policy_is_there_at_start(http):
    status, admin = await http.get(f"{RBAC}/clusterroles/cluster-admin")
    assert status == 200
    assert admin["rules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                              {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    assert admin["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    status, crb = await http.get(f"{RBAC}/clusterrolebindings/system:controller:node-controller")
    assert status == 200
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "node-controller", "namespace": "kube-system"}]


async def test_discovery_serves_rbac_and_the_reviews(http):
    status, rbac = await http.get(RBAC)
    assert status == 200
    assert {r["name"] for r in rbac["resources"]} == {"roles", "clusterroles", "rolebindings", "clusterrolebindings"}
    status, authz = await http.get(AUTHZ)
    assert {r["name"]: r["verbs"] for r in authz["resources"]} == {
        "subjectaccessreviews": ["create"], "selfsubjectaccessreviews": ["create"],
        "localsubjectaccessreviews": ["create"], "selfsubjectrulesreviews": ["create"]}
    status, _ = await http.get(f"{AUTHZ}/subjectaccessreviews")
    assert status == 405


async def test_rolebindings_as_kubectl_shows_them_and_role_ref_is_immutable(http):
    await bind(http, "default", "devs-view", "ClusterRole", "view",
               {"kind": "Group", "apiGroup": G, "name": "devs"})
    status, table = await http.get(f"{RBAC}/namespaces/default/rolebindings", headers=TABLE)
    assert status == 200
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Role", "Age", "Users", "Groups",
                                                               "ServiceAccounts"]
    (row,) = table["rows"]
    assert row["cells"][:2] == ["devs-view", "ClusterRole/view"] and row["cells"][3:] == ["", "devs", ""]
    status, err = await http.patch(f"{RBAC}/namespaces/default/rolebindings/devs-view",
                                   {"roleRef": {"name": "edit"}}, "application/merge-patch+json")
    assert status == 422
    assert err["message"] == (
        'RoleBinding.rbac.authorization.k8s.io "devs-view" is invalid: roleRef: Invalid value: '
        f'rbac.RoleRef{{APIGroup:"{G}", Kind:"ClusterRole", Name:"edit"}}: cannot change roleRef')


async def test_subject_access_review(http):
    await bind(http, "kube-public", "jane-view", "ClusterRole", "view", {"kind": "User", "apiGroup": G, "name": "jane"})
    allowed = await until_allowed(http, "jane", "list", "pods", "kube-public")
    assert allowed["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "jane-view/kube-public" '
                                 'of ClusterRole "view" to User "jane"'}
    assert allowed["kind"] == "SubjectAccessReview" and allowed["apiVersion"] == "authorization.k8s.io/v1"
    review = {"spec": {"user": "jane", "resourceAttributes": {"verb": "list", "resource": "pods",
                                                              "namespace": "other"}}}
    status, body = await http.post(f"{AUTHZ}/subjectaccessreviews", review)
    assert (status, body["status"]) == (201, {"allowed": False})
    status, body = await http.post(f"{AUTHZ}/subjectaccessreviews", {"spec": {"resourceAttributes": {}}})
    assert status == 422
    assert body["message"] == ('SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid '
                               'value: "": at least one of user or group must be specified')


async def test_self_reviews_as_an_impersonated_user(http):
    ssar = {"spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}}
    status, body = await http.post(f"{AUTHZ}/selfsubjectaccessreviews", ssar)
    assert (status, body["status"]["allowed"]) == (201, True)  # the admin
    status, body = await http.post(f"{AUTHZ}/selfsubjectaccessreviews", ssar, headers=jane())
    assert (status, body["status"]) == (201, {"allowed": False})
    status, rules = await http.post(f"{AUTHZ}/selfsubjectrulesreviews", {"spec": {"namespace": "default"}},
                                    headers=jane())
    assert status == 201 and rules["status"]["incomplete"] is False
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in rules["status"]["resourceRules"]
    assert any("/healthz" in r["nonResourceURLs"] for r in rules["status"]["nonResourceRules"])
    status, me = await http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, headers=jane())
    assert status == 201
    assert me["status"] == {"userInfo": {"username": "jane", "groups": ["system:authenticated"]}}


async def test_local_subject_access_review_stays_in_its_namespace(http):
    review = {"spec": {"user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "x"}}}
    status, body = await http.post(f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", review)
    assert (status, body["message"]) == (400, "spec.resourceAttributes.namespace must match namespace: default")
    review["spec"]["resourceAttributes"]["namespace"] = "default"
    status, body = await http.post(f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", review)
    assert (status, body["kind"], body["status"]["allowed"]) == (201, "LocalSubjectAccessReview", False)


async def test_a_user_without_a_binding_is_refused_with_kube_s_message(http):
    status, body = await http.get("/api/v1/namespaces/default/pods", headers=jane())
    assert status == 403
    assert body["message"] == ('pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
                               'in the namespace "default"')
    assert body["details"] == {"kind": "pods"}  # Go's omitempty leaves the core group out
    await bind(http, "default", "jane-view", "ClusterRole", "view", {"kind": "User", "apiGroup": G, "name": "jane"})
    await until_allowed(http, "jane", "list", "pods", "default")
    status, _ = await http.get("/api/v1/namespaces/default/pods", headers=jane())
    assert status == 200
    status, _ = await http.post("/api/v1/namespaces/default/services", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"port": 80}]}}, headers=jane())
    assert status == 403


async def test_a_namespace_admin_cannot_grant_more_than_it_holds(http):
    status, _ = await http.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert status == 201
    await bind(http, "team", "jane-admin", "ClusterRole", "admin", {"kind": "User", "apiGroup": G, "name": "jane"})
    await until_allowed(http, "jane", "create", "rolebindings", "team", G)
    ok = {"metadata": {"name": "bob-view"}, "subjects": [{"kind": "User", "apiGroup": G, "name": "bob"}],
          "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"}}
    status, body = await http.post(f"{RBAC}/namespaces/team/rolebindings", ok, headers=jane())
    assert status == 201, body
    too_much = {**ok, "metadata": {"name": "bob-root"},
                "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "cluster-admin"}}
    status, body = await http.post(f"{RBAC}/namespaces/team/rolebindings", too_much, headers=jane())
    assert status == 403
    assert body["message"].startswith('rolebindings.rbac.authorization.k8s.io "bob-root" is forbidden: user "jane" '
                                      '(groups=["system:authenticated"]) is attempting to grant RBAC permissions '
                                      "not currently held:\n")


async def test_a_node_writes_only_its_own_node(http):
    for name in ("n1", "n2"):
        status, _ = await http.post("/api/v1/nodes", {"metadata": {"name": name}})
        assert status == 201
    status, body = await http.patch("/api/v1/nodes/n1/status", {"status": {"phase": "Running"}},
                                    "application/merge-patch+json", headers=node("n1"))
    assert status == 200, body
    status, body = await http.patch("/api/v1/nodes/n2/status", {"status": {"phase": "Running"}},
                                    "application/merge-patch+json", headers=node("n1"))
    assert (status, body["message"]) == (403, 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"')
    status, body = await http.get("/apis/apps/v1/deployments", headers=node("n1"))
    assert status == 403


async def test_a_user_of_a_client_certificate_gets_what_its_bindings_give(apiserver, http):
    from tests.conftest import Http

    async with apiserver.session(apiserver.config_for("dana", ("qa",))) as session:
        dana = Http(session)
        status, body = await dana.get("/api/v1/namespaces/default/services")
        assert status == 403
        assert body["message"] == ('services is forbidden: User "dana" cannot list resource "services" in '
                                   'API group "" in the namespace "default"')
        status, me = await dana.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
        assert status == 201 and me["status"]["userInfo"]["username"] == "dana"
        assert "qa" in me["status"]["userInfo"]["groups"]
        await bind(http, "default", "qa-view", "ClusterRole", "view", {"kind": "Group", "apiGroup": G, "name": "qa"})
        for _ in range(100):
            status, _ = await dana.get("/api/v1/namespaces/default/services")
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200
        status, _ = await dana.get("/api/v1/namespaces/kube-system/services")
        assert status == 403


async def test_a_node_certificate_is_held_to_its_own_node(apiserver, http):
    from tests.conftest import Http

    for name in ("n1", "n2"):
        status, _ = await http.post("/api/v1/nodes", {"metadata": {"name": name}})
        assert status == 201
    async with apiserver.session(apiserver.config_for("system:node:n1", ("system:nodes",))) as session:
        n1 = Http(session)
        status, _ = await n1.patch("/api/v1/nodes/n1/status", {"status": {"phase": "Running"}},
                                   "application/merge-patch+json")
        assert status == 200
        status, body = await n1.patch("/api/v1/nodes/n2/status", {"status": {"phase": "Running"}},
                                      "application/merge-patch+json")
        assert (status, body["message"]) == (
            403, 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"')
        status, body = await n1.get("/api/v1/namespaces/default/secrets/x")
        assert status in (403, 404)  # 404 until the Secret kind is served: never a read
