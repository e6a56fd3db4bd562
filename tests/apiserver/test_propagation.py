"""DELETE with a propagation policy, through the REST paths against real etcd: the
finalizers and deletion marks each policy leaves (no garbage collector runs here), the
Status answers for refused options, and objects going once their finalizers are removed."""
from __future__ import annotations

import pytest

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"
MERGE = "application/merge-patch+json"


def deployment(name: str = "web", **meta) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, **meta},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def options(**fields) -> dict:
    return {"kind": "DeleteOptions", "apiVersion": "v1", **fields}


@pytest.mark.parametrize("query, body, finalizers", [
    ("?propagationPolicy=Orphan", None, ["orphan"]),
    ("", options(propagationPolicy="Orphan"), ["orphan"]),
    ("?propagationPolicy=Foreground", None, ["foregroundDeletion"]),
    ("", options(propagationPolicy="Foreground"), ["foregroundDeletion"]),
    ("?orphanDependents=true", None, ["orphan"]),
    ("", options(orphanDependents=True), ["orphan"]),
], ids=["orphan-query", "orphan-body", "foreground-query", "foreground-body",
        "orphanDependents-query", "orphanDependents-body"])
async def test_orphan_and_foreground_mark_the_owner_with_their_finalizer(http, query, body,
                                                                         finalizers):
    _, created = await http.post(DEPLOYS, deployment())
    code, marked = await http.delete(f"{DEPLOYS}/web{query}", body)
    assert code == 200, marked
    meta = marked["metadata"]
    assert meta["finalizers"] == finalizers
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == created["metadata"]["generation"] + 1
    code, still = await http.get(f"{DEPLOYS}/web")
    assert code == 200 and still["metadata"]["finalizers"] == finalizers
    # what the garbage collector does last: the finalizer goes, and so does the object
    code, _ = await http.patch(f"{DEPLOYS}/web", {"metadata": {"finalizers": None}}, MERGE)
    assert code == 200
    assert (await http.get(f"{DEPLOYS}/web"))[0] == 404


@pytest.mark.parametrize("query, body", [
    ("", None),
    ("?propagationPolicy=Background", None),
    ("", options(propagationPolicy="Background")),
    ("?orphanDependents=false", None),
], ids=["default", "background-query", "background-body", "orphanDependents-false"])
async def test_background_deletes_at_once(http, query, body):
    await http.post(DEPLOYS, deployment())
    code, gone = await http.delete(f"{DEPLOYS}/web{query}", body)
    assert code == 200 and gone["metadata"]["name"] == "web"
    assert (await http.get(f"{DEPLOYS}/web"))[0] == 404


async def test_another_policy_replaces_the_first_and_background_ends_it(http):
    await http.post(DEPLOYS, deployment(finalizers=["example.com/hold"]))
    _, first = await http.delete(f"{DEPLOYS}/web?propagationPolicy=Orphan")
    assert first["metadata"]["finalizers"] == ["example.com/hold", "orphan"]
    code, second = await http.delete(f"{DEPLOYS}/web", options(propagationPolicy="Foreground"))
    assert code == 200
    assert second["metadata"]["finalizers"] == ["example.com/hold", "foregroundDeletion"]
    assert second["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    # a DELETE without a policy keeps the one in place
    _, third = await http.delete(f"{DEPLOYS}/web")
    assert third["metadata"]["finalizers"] == ["example.com/hold", "foregroundDeletion"]
    # orphanDependents=false on an object that stays: 202, as kube-apiserver answers
    code, fourth = await http.delete(f"{DEPLOYS}/web?orphanDependents=false")
    assert code == 202 and fourth["metadata"]["finalizers"] == ["example.com/hold"]
    code, _ = await http.patch(f"{DEPLOYS}/web", {"metadata": {"finalizers": []}}, MERGE)
    assert (await http.get(f"{DEPLOYS}/web"))[0] == 404


@pytest.mark.parametrize("query, body, field, reason, message", [
    ("?propagationPolicy=Sideways", None, "propagationPolicy", "FieldValueNotSupported",
     'Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil"'),
    ("", options(propagationPolicy="orphan"), "propagationPolicy", "FieldValueNotSupported",
     'Unsupported value: "orphan": supported values: "Foreground", "Background", "Orphan", "nil"'),
    ("", options(propagationPolicy="Orphan", orphanDependents=True), "propagationPolicy",
     "FieldValueInvalid",
     'Invalid value: "Orphan": orphanDependents and deletionPropagation cannot be both set'),
], ids=["unknown-query", "lowercase-body", "both"])
async def test_refused_options_are_422_invalid_delete_options(http, query, body, field, reason,
                                                              message):
    await http.post(DEPLOYS, deployment())
    code, status = await http.delete(f"{DEPLOYS}/web{query}", body)
    assert code == 422
    assert status["kind"] == "Status" and status["reason"] == "Invalid"
    assert status["message"] == f'DeleteOptions.meta.k8s.io "" is invalid: {field}: {message}'
    assert status["details"] == {"group": "meta.k8s.io", "kind": "DeleteOptions",
                                 "causes": [{"reason": reason, "message": message,
                                             "field": field}]}
    code, still = await http.get(f"{DEPLOYS}/web")
    assert code == 200 and "deletionTimestamp" not in still["metadata"]


async def test_an_undecodable_orphan_dependents_is_400(http):
    await http.post(DEPLOYS, deployment())
    code, status = await http.delete(f"{DEPLOYS}/web?orphanDependents=perhaps")
    assert code == 400 and status["reason"] == "BadRequest"


async def test_an_unbound_pod_deleted_with_orphan_waits_for_its_finalizer(http):
    await http.post(PODS, pod("p"))
    code, marked = await http.delete(f"{PODS}/p", options(propagationPolicy="Orphan"))
    assert code == 200
    meta = marked["metadata"]
    assert meta["finalizers"] == ["orphan"] and meta["deletionGracePeriodSeconds"] == 0
    code, _ = await http.patch(f"{PODS}/p", {"metadata": {"finalizers": None}}, MERGE)
    assert code == 200
    assert (await http.get(f"{PODS}/p"))[0] == 404


async def test_a_bound_pod_counts_down_then_waits_for_its_finalizer(http):
    await http.post(PODS, pod("p", nodeName="node-a", terminationGracePeriodSeconds=20))
    code, marked = await http.delete(f"{PODS}/p?propagationPolicy=Foreground")
    assert code == 200
    meta = marked["metadata"]
    assert meta["finalizers"] == ["foregroundDeletion"] and meta["deletionGracePeriodSeconds"] == 20
    # the node agent is done: the grace period drops to 0, the finalizer still holds the pod
    code, held = await http.delete(f"{PODS}/p?gracePeriodSeconds=0")
    assert code == 200 and held["metadata"]["deletionGracePeriodSeconds"] == 0
    assert (await http.get(f"{PODS}/p"))[0] == 200
    code, _ = await http.patch(f"{PODS}/p", {"metadata": {"finalizers": None}}, MERGE)
    assert (await http.get(f"{PODS}/p"))[0] == 404


async def test_delete_collection_marks_each_with_the_policy(http):
    for name in ("a", "b"):
        await http.post(DEPLOYS, deployment(name))
    code, lst = await http.delete(DEPLOYS, options(propagationPolicy="Orphan"))
    assert code == 200
    assert sorted(o["metadata"]["name"] for o in lst["items"]) == ["a", "b"]
    _, now = await http.get(DEPLOYS)
    assert [o["metadata"]["finalizers"] for o in now["items"]] == [["orphan"], ["orphan"]]


async def test_dry_run_in_the_body_deletes_nothing(http):
    await http.post(DEPLOYS, deployment())
    code, _ = await http.delete(f"{DEPLOYS}/web", options(dryRun=["All"],
                                                          propagationPolicy="Foreground"))
    assert code == 200
    code, still = await http.get(f"{DEPLOYS}/web")
    assert code == 200 and "deletionTimestamp" not in still["metadata"]


@pytest.mark.parametrize("finalizer", ["orphan", "foregroundDeletion"])
async def test_a_namespace_purge_deletes_in_the_background(http, finalizer):
    """As kube's namespace controller: its deletions say Background, which replaces a GC
    finalizer the object carries, so the namespace does not wait for the collector."""
    import asyncio

    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "team"}}))[0] == 201
    code, _ = await http.post("/apis/apps/v1/namespaces/team/deployments",
                              deployment(finalizers=[finalizer]))
    assert code == 201
    assert (await http.delete("/api/v1/namespaces/team"))[0] == 200
    for _ in range(100):
        if (await http.get("/api/v1/namespaces/team"))[0] == 404:
            break
        await asyncio.sleep(0.1)
    assert (await http.get("/apis/apps/v1/namespaces/team/deployments/web"))[0] == 404
    assert (await http.get("/api/v1/namespaces/team"))[0] == 404
