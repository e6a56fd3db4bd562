"""NodeRestriction through the registry: a node writes only its own Node and the pods bound to
it, and none of the labels kube keeps from kubelets; kube's 403 messages."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver import admission
from services.apiserver.admission.noderestriction import NodeRestriction, forbidden_labels
from services.apiserver.registry.interfaces import UserInfo
from services.apiserver.registry.store import Store
from services.apiserver.registry.validation import FieldValidation
from tests.apiserver.authz.policy import caches_over, stored

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
MERGE = "application/merge-patch+json"


def node(name: str, **labels: str) -> tuple:
    return (R.NODES, {"metadata": {"name": name, "labels": dict(labels)}, "spec": {}})


def pod(name: str, node_name: str) -> tuple:
    return (R.PODS, {"metadata": {"name": name, "namespace": "team", "labels": {"app": "x"}},
                     "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "i"}]}})


@pytest.fixture
async def store():
    storage = stored((R.NAMESPACES, {"metadata": {"name": "team"}}), node("n1"), node("n2"),
                     pod("mine", "n1"), pod("theirs", "n2"))
    caches = caches_over(storage)
    s = Store(storage, caches, admission.Chain([NodeRestriction(caches)]))
    yield s
    s.namespaces.cancel()


async def patch(store: Store, rt, ns, name, body, *, status=False, who=N1):
    return await store.patch(rt, ns, name, body, MERGE, status_only=status, manager=None,
                             fields=FieldValidation(), dry_run=False, user=who)


async def refused(coro) -> ApiError:
    with pytest.raises(ApiError) as err:
        await coro
    assert err.value.code == 403 and err.value.reason == "Forbidden"
    return err.value


async def test_a_node_writes_its_own_node_and_status(store):
    await patch(store, R.NODES, None, "n1", {"metadata": {"labels": {"kubernetes.io/hostname": "n1"}}})
    await patch(store, R.NODES, None, "n1", {"status": {"capacity": {"pods": "110"}}}, status=True)


async def test_a_node_does_not_write_another_node(store):
    err = await refused(patch(store, R.NODES, None, "n2", {"status": {"phase": "x"}}, status=True))
    assert err.message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'


async def test_a_node_does_not_delete_another_node(store):
    await refused(store.delete(R.NODES, None, "n2", {}, user=N1))


async def test_a_node_registers_without_restricted_labels(store):
    body = {"metadata": {"name": "n3", "labels": {"node-restriction.kubernetes.io/x": "y",
                                                  "node-role.kubernetes.io/control-plane": ""}}}
    err = await refused(store.create(R.NODES, body, None, fields=FieldValidation(), dry_run=False,
                                     user=UserInfo("system:node:n3", groups=("system:nodes",))))
    assert err.message == ('nodes "n3" is forbidden: node "n3" is not allowed to set the following labels: '
                           'node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane')


async def test_a_node_does_not_change_its_restricted_labels(store):
    err = await refused(patch(store, R.NODES, None, "n1",
                              {"metadata": {"labels": {"node-restriction.kubernetes.io/secure": "true"}}}))
    assert err.message == ('nodes "n1" is forbidden: is not allowed to modify labels: '
                           'node-restriction.kubernetes.io/secure')


async def test_a_node_does_not_change_its_taints(store):
    err = await refused(patch(store, R.NODES, None, "n1", {"spec": {"taints": [
        {"key": "k", "effect": "NoSchedule"}]}}))
    assert err.message == 'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'


async def test_a_node_writes_the_status_of_its_own_pods_only(store):
    await patch(store, R.PODS, "team", "mine", {"status": {"phase": "Running"}}, status=True)
    err = await refused(patch(store, R.PODS, "team", "theirs", {"status": {"phase": "Running"}}, status=True))
    assert err.message == ('pods "theirs" is forbidden: node "n1" can only update pod status for pods '
                           'with spec.nodeName set to itself')


async def test_a_node_does_not_relabel_a_pod_through_its_status(store):
    err = await refused(patch(store, R.PODS, "team", "mine", {"metadata": {"labels": {"app": "y"}}},
                              status=True))
    assert err.message.endswith('node "n1" cannot update labels through pod status')


async def test_a_node_deletes_its_own_pods_only(store):
    await store.delete(R.PODS, "team", "mine", {"gracePeriodSeconds": 0}, user=N1)
    err = await refused(store.delete(R.PODS, "team", "theirs", {}, user=N1))
    assert err.message == 'pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'


async def test_a_node_does_not_update_a_pod_spec(store):
    await refused(patch(store, R.PODS, "team", "mine", {"metadata": {"labels": {"app": "y"}}}))


async def test_a_node_creates_only_mirror_pods(store):
    body = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    err = await refused(store.create(R.PODS, body, "team", fields=FieldValidation(), dry_run=False, user=N1))
    assert err.message == ('pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, '
                           'node "n1" can only create mirror pods')


async def test_other_users_pass(store):
    await patch(store, R.NODES, None, "n2", {"metadata": {"labels": {"node-restriction.kubernetes.io/a": "b"}}},
                who=UserInfo("jane"))


LABELS = [
    ("kubelet's own labels", {"kubernetes.io/hostname": "n", "kubernetes.io/os": "linux",
                              "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m"}, {}, []),
    ("labels outside kubernetes.io", {"example.com/x": "1", "plain": "2"}, {}, []),
    ("node-restriction prefix", {"node-restriction.kubernetes.io/a": "1"}, {}, ["node-restriction.kubernetes.io/a"]),
    ("a subdomain of node-restriction", {"x.node-restriction.kubernetes.io/a": "1"}, {},
     ["x.node-restriction.kubernetes.io/a"]),
    ("unknown kubernetes.io label", {"node-role.kubernetes.io/worker": ""}, {}, ["node-role.kubernetes.io/worker"]),
    ("unknown k8s.io label", {"foo.k8s.io/x": "1"}, {}, ["foo.k8s.io/x"]),
    ("removing one counts", {}, {"node-restriction.kubernetes.io/a": "1"}, ["node-restriction.kubernetes.io/a"]),
    ("unchanged is fine", {"node-restriction.kubernetes.io/a": "1"}, {"node-restriction.kubernetes.io/a": "1"}, []),
]


@pytest.mark.parametrize("new, old, bad", [c[1:] for c in LABELS], ids=[c[0] for c in LABELS])
def test_forbidden_labels(new, old, bad) -> None:
    assert forbidden_labels(new, old) == bad


def mirror(store: Store, **spec) -> dict:
    uid = store.storage.objects[R.NODES.key(None, "n1")]["metadata"]["uid"]  # type: ignore[attr-defined]
    return {"metadata": {"name": "static", "annotations": {"kubernetes.io/config.mirror": "x"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": uid,
                                              "controller": True}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}], **spec}}


async def test_a_node_creates_a_mirror_pod_owned_by_its_node(store):
    await store.create(R.PODS, mirror(store), "team", fields=FieldValidation(), dry_run=False, user=N1)


@pytest.mark.parametrize("spec, what", [
    ({"serviceAccountName": "default"}, "a service account"),
    ({"imagePullSecrets": [{"name": "pull"}]}, "secrets"),
    ({"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}]}}]}, "secrets"),
    ({"volumes": [{"name": "v", "configMap": {"name": "c"}}]}, "configmaps"),
    ({"containers": [{"name": "c", "image": "i", "envFrom": [{"configMapRef": {"name": "c"}}]}]}, "configmaps"),
    ({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "d"}}]}, "persistentvolumeclaims"),
], ids=["service account", "pull secret", "projected secret", "configmap volume", "envFrom", "claim"])
async def test_a_mirror_pod_references_nothing(store, spec, what):
    err = await refused(store.create(R.PODS, mirror(store, **spec), "team", fields=FieldValidation(),
                                     dry_run=False, user=N1))
    assert err.message == f'pods "static" is forbidden: node "n1" can not create pods that reference {what}'


async def test_a_mirror_pod_owned_by_another_uid_is_refused(store):
    pod = mirror(store)
    pod["metadata"]["ownerReferences"][0]["uid"] = "other"
    err = await refused(store.create(R.PODS, pod, "team", fields=FieldValidation(), dry_run=False, user=N1))
    assert "UID mismatch" in err.message
