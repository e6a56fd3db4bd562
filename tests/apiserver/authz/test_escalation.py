"""Privilege escalation prevention through the registry: a user writes roles and bindings
only for what it holds, or with the `escalate` / `bind` verbs, as kube-apiserver's RBAC
storage decides; kube's 403 and message otherwise."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver import admission, authz
from services.apiserver.authz.escalation import EscalationCheck
from services.apiserver.authz.rbac import RBACAuthorizer
from services.apiserver.registry.interfaces import SERVER_USER, UserInfo
from services.apiserver.registry.store import Store
from services.apiserver.registry.validation import FieldValidation
from tests.apiserver.authz.policy import (
    binding,
    caches_over,
    cluster_binding,
    cluster_role,
    role,
    rule,
    stored,
    user,
)

JANE = UserInfo("jane", groups=("system:authenticated",))
WRITE = ["get", "create", "update", "patch", "delete"]  # not `*`: that would hold escalate and bind
ADMIN_RULES = rule(WRITE, ["rbac.authorization.k8s.io"], ["roles", "rolebindings"])


@pytest.fixture
async def store():
    storage = stored(
        (R.NAMESPACES, {"metadata": {"name": "team"}}),
        (R.CLUSTERROLES, cluster_role("pod-reader", rule(["get", "list"], resources=["pods"]))),
        (R.CLUSTERROLES, cluster_role("secret-reader", rule(["get"], resources=["secrets"]))),
        (R.CLUSTERROLES, cluster_role("rbac-writer", ADMIN_RULES, rule(
            WRITE, ["rbac.authorization.k8s.io"], ["clusterroles", "clusterrolebindings"]))),
        (R.CLUSTERROLES, cluster_role("escalator", rule(["escalate"], ["rbac.authorization.k8s.io"], ["roles"]))),
        (R.CLUSTERROLES, cluster_role("binder", rule(["bind"], ["rbac.authorization.k8s.io"], ["clusterroles"],
                                                     names=["secret-reader"]))),
        (R.ROLEBINDINGS, binding("team", "jane-rbac", "ClusterRole", "rbac-writer", user("jane"))),
        (R.ROLEBINDINGS, binding("team", "jane-pods", "ClusterRole", "pod-reader", user("jane"))),
        (R.CLUSTERROLEBINDINGS, cluster_binding("jane-rbac-cluster", "rbac-writer", user("jane"))),
    )
    caches = caches_over(storage)
    rbac = RBACAuthorizer(caches)
    chain = authz.Union([authz.PrivilegedGroups("system:masters"), rbac])
    s = Store(storage, caches, admission.Chain([EscalationCheck(chain, rbac)]))
    yield s
    s.namespaces.cancel()


async def create(store: Store, rt, obj, who: UserInfo = JANE):
    return await store.create(rt, obj, obj["metadata"].get("namespace"), fields=FieldValidation(),
                              dry_run=False, user=who)


async def test_a_role_granting_only_what_its_writer_holds_is_created(store):
    await create(store, R.ROLES, role("team", "reader", rule(["get"], resources=["pods"])))


async def test_a_role_granting_more_is_refused_with_kube_s_message(store):
    with pytest.raises(ApiError) as err:
        await create(store, R.ROLES, role("team", "deleter", rule(["get", "delete"], resources=["pods"])))
    assert err.value.code == 403 and err.value.reason == "Forbidden"
    assert err.value.message == (
        'roles.rbac.authorization.k8s.io "deleter" is forbidden: user "jane" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently '
        'held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    assert err.value.details == {"name": "deleter", "group": "rbac.authorization.k8s.io", "kind": "roles"}


async def test_held_in_the_namespace_is_not_held_cluster_wide(store):
    with pytest.raises(ApiError) as err:
        await create(store, R.CLUSTERROLES, cluster_role("reader", rule(["get"], resources=["pods"])))
    assert err.value.code == 403


async def test_an_update_is_checked_too(store):
    await create(store, R.ROLES, role("team", "reader", rule(["get"], resources=["pods"])))
    with pytest.raises(ApiError) as err:
        await store.patch(R.ROLES, "team", "reader", {"rules": [rule(["get"], resources=["secrets"])]},
                          "application/merge-patch+json", status_only=False, manager=None,
                          fields=FieldValidation(), dry_run=False, user=JANE)
    assert err.value.code == 403


async def test_the_escalate_verb_allows_any_rules(store):
    await create(store, R.ROLEBINDINGS, binding("team", "esc", "ClusterRole", "escalator", user("jane")),
                 SERVER_USER)
    await create(store, R.ROLES, role("team", "anything", rule(["*"], ["*"], ["*"])))


async def test_system_masters_may_grant_anything(store):
    await create(store, R.CLUSTERROLES, cluster_role("all", rule(["*"], ["*"], ["*"])), SERVER_USER)


async def test_a_binding_to_a_role_whose_rules_are_held_is_created(store):
    await create(store, R.ROLEBINDINGS, binding("team", "b", "ClusterRole", "pod-reader", user("bob")))


async def test_a_binding_to_a_role_not_held_is_refused(store):
    with pytest.raises(ApiError) as err:
        await create(store, R.CLUSTERROLEBINDINGS, cluster_binding("b", "secret-reader", user("bob")))
    assert err.value.code == 403
    assert 'clusterrolebindings.rbac.authorization.k8s.io "b" is forbidden: user "jane"' in err.value.message
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in err.value.message


async def test_the_bind_verb_on_that_role_allows_the_binding(store):
    await create(store, R.ROLEBINDINGS, binding("team", "binder", "ClusterRole", "binder", user("jane")),
                 SERVER_USER)
    await create(store, R.ROLEBINDINGS, binding("team", "b", "ClusterRole", "secret-reader", user("bob")))
    with pytest.raises(ApiError):  # bind in the namespace is not bind cluster-wide
        await create(store, R.CLUSTERROLEBINDINGS, cluster_binding("b", "secret-reader", user("bob")))


async def test_a_binding_to_a_missing_role_is_refused_saying_so(store):
    with pytest.raises(ApiError) as err:
        await create(store, R.ROLEBINDINGS, binding("team", "b", "Role", "nothing", user("bob")))
    assert err.value.code == 403
    assert err.value.message.endswith('is forbidden: role.rbac.authorization.k8s.io "nothing" not found')
