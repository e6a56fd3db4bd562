"""Pods: binding, status subresource, graceful deletion."""
from __future__ import annotations

import asyncio

import pytest

from kubecore.api import resources as R
from tests.conftest import ApiServer, api_settings

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


async def test_pod_defaults(http):
    code, p = await http.post(PODS, pod("p"))
    assert code == 201, p
    assert p["status"]["phase"] == "Pending"
    assert p["spec"]["restartPolicy"] == "Always"
    assert p["spec"]["terminationGracePeriodSeconds"] == 30


async def test_binding_sets_node_once(http):
    await http.post(PODS, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    code, st = await http.post(f"{PODS}/p/binding", binding)
    assert code == 201, st
    _, p = await http.get(f"{PODS}/p")
    assert p["spec"]["nodeName"] == "node-a"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    code, st = await http.post(f"{PODS}/p/binding", {**binding, "target": {"kind": "Node", "name": "node-b"}})
    assert code == 409 and "already assigned" in st["message"]


async def test_spec_change_forbidden_but_image_allowed(http):
    _, p = await http.post(PODS, pod("p"))
    p["spec"]["containers"][0]["image"] = "nginx:1.27"
    code, upd = await http.put(f"{PODS}/p", p)
    assert code == 200
    upd["spec"]["restartPolicy"] = "Never"
    code, st = await http.put(f"{PODS}/p", upd)
    assert code == 422 and "Forbidden" in st["message"]


async def test_status_update_touches_only_status(http):
    _, p = await http.post(PODS, pod("p"))
    p["status"] = {"phase": "Running", "podIP": "10.244.1.5"}
    p["metadata"]["labels"] = {"changed": "yes"}
    code, st = await http.put(f"{PODS}/p/status", p)
    assert code == 200
    assert st["status"]["podIP"] == "10.244.1.5" and st["metadata"]["labels"] == {"app": "web"}
    code, lst = await http.get(f"{PODS}?fieldSelector=status.phase=Running")
    assert [x["metadata"]["name"] for x in lst["items"]] == ["p"]
    code, st = await http.patch(f"{PODS}/p/status", {"status": {"phase": "Succeeded"}},
                                "application/merge-patch+json")
    assert code == 200 and st["status"]["phase"] == "Succeeded" and st["status"]["podIP"] == "10.244.1.5"


async def test_unscheduled_pod_is_deleted_at_once(http):
    await http.post(PODS, pod("p"))
    code, gone = await http.delete(f"{PODS}/p")
    assert code == 200 and gone["metadata"]["name"] == "p"
    assert (await http.get(f"{PODS}/p"))[0] == 404


async def test_bound_pod_is_marked_then_removed_by_its_node(http):
    await http.post(PODS, pod("p", nodeName="node-a", terminationGracePeriodSeconds=20))
    code, marked = await http.delete(f"{PODS}/p")
    assert code == 200
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 20
    code, still = await http.get(f"{PODS}/p")
    assert code == 200 and still["metadata"]["deletionTimestamp"]
    code, lst = await http.get(f"{PODS}?fieldSelector=spec.nodeName=node-a")
    assert [x["metadata"]["name"] for x in lst["items"]] == ["p"]
    # the node agent confirms with a zero grace period
    code, _ = await http.delete(f"{PODS}/p?gracePeriodSeconds=0")
    assert code == 200
    assert (await http.get(f"{PODS}/p"))[0] == 404


async def test_overdue_pod_is_removed_when_its_node_never_confirms(etcd):
    server = await ApiServer(api_settings(etcd, pod_force_delete_after=0.5, sweep_interval=0.2)).start()
    try:
        async with server.session() as s:
            async with s.post(PODS, json=pod("p", nodeName="gone", terminationGracePeriodSeconds=1)) as r:
                assert r.status == 201
            async with s.delete(f"{PODS}/p") as r:
                assert r.status == 200
            for _ in range(100):
                async with s.get(f"{PODS}/p") as r:
                    if r.status == 404:
                        break
                await asyncio.sleep(0.1)
            assert r.status == 404
    finally:
        await server.stop()


async def test_delete_preconditions(http):
    _, p = await http.post(PODS, pod("p"))
    code, st = await http.delete(f"{PODS}/p", {"kind": "DeleteOptions", "apiVersion": "v1",
                                               "preconditions": {"uid": "not-the-uid"}})
    assert code == 409 and "Precondition failed" in st["message"]
    code, _ = await http.delete(f"{PODS}/p", {"preconditions": {"uid": p["metadata"]["uid"]}})
    assert code == 200


async def test_finalizers_hold_deletion_until_removed(http):
    body = {"metadata": {"name": "held", "finalizers": ["example.com/wait"]}, "spec": {"ports": [{"port": 80}]}}
    svc = "/api/v1/namespaces/default/services"
    await http.post(svc, body)
    code, marked = await http.delete(f"{svc}/held")
    assert code == 200 and marked["metadata"]["deletionTimestamp"]
    code, gone = await http.patch(f"{svc}/held", {"metadata": {"finalizers": None}},
                                  "application/merge-patch+json")
    assert code == 200
    assert (await http.get(f"{svc}/held"))[0] == 404


async def test_the_delete_after_the_last_finalizer_takes_only_that_object(http, apiserver):
    """Between the update that releases an object and its delete, the name may have been
    deleted and created again, or a finalizer put back: the delete takes neither."""
    from services.apiserver.endpoints.requests import Target

    def _finish_if_released(state, t, obj):
        return state.registry.finish_if_released(t.rt, t.namespace, obj)

    svc = "/api/v1/namespaces/default/services"
    code, created = await http.post(svc, {"metadata": {"name": "again"},
                                          "spec": {"ports": [{"port": 80}]}})
    released = {**created, "metadata": {**created["metadata"], "uid": "an-older-one",
                                        "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    t = Target(R.SERVICES, "default", "again", None)
    assert await _finish_if_released(apiserver.state, t, released) is released
    assert (await http.get(f"{svc}/again"))[0] == 200  # the new object of that name stays

    held = {"metadata": {"name": "held-again", "finalizers": ["example.com/wait"]},
            "spec": {"ports": [{"port": 80}]}}
    await http.post(svc, held)
    code, marked = await http.delete(f"{svc}/held-again")
    seen_released = {**marked, "metadata": {**marked["metadata"], "finalizers": []}}
    seen_released["metadata"].pop("finalizers")
    t = Target(R.SERVICES, "default", "held-again", None)
    assert await _finish_if_released(apiserver.state, t, seen_released) is seen_released
    assert (await http.get(f"{svc}/held-again"))[0] == 200  # its finalizer is still there


async def test_deployment_scale_subresource(http):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    path = "/apis/apps/v1/namespaces/default/deployments"
    code, created = await http.post(path, dep)
    assert code == 201, created
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    code, sc = await http.get(f"{path}/web/scale")
    assert code == 200 and sc["spec"]["replicas"] == 3 and sc["status"]["selector"] == "app=web"
    code, sc = await http.patch(f"{path}/web/scale", {"spec": {"replicas": 5}}, "application/merge-patch+json")
    assert code == 200 and sc["spec"]["replicas"] == 5
    _, d = await http.get(f"{path}/web")
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    bad = {**dep, "metadata": {"name": "bad"}}
    bad["spec"] = {**dep["spec"], "selector": {"matchLabels": {"app": "other"}}}
    code, st = await http.post(path, bad)
    assert code == 422 and "selector" in st["message"]


@pytest.mark.parametrize("spec,message", [
    ({"progressDeadlineSeconds": -1},
     'Deployment.apps "bad" is invalid: spec.progressDeadlineSeconds: Invalid value: -1: must be '
     'greater than or equal to 0'),
    ({"minReadySeconds": 10, "progressDeadlineSeconds": 10},
     'Deployment.apps "bad" is invalid: spec.progressDeadlineSeconds: Invalid value: 10: must be '
     'greater than minReadySeconds'),
    ({"revisionHistoryLimit": -2, "minReadySeconds": -1},
     'Deployment.apps "bad" is invalid: [spec.minReadySeconds: Invalid value: -1: must be greater '
     'than or equal to 0, spec.revisionHistoryLimit: Invalid value: -2: must be greater than or '
     'equal to 0]'),
])
async def test_deployment_timing_fields_are_validated_as_kube_apiserver_does(http, spec, message):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                    **spec}}
    code, status = await http.post("/apis/apps/v1/namespaces/default/deployments", dep)
    assert code == 422 and status["message"] == message


async def test_a_status_write_does_not_check_the_stored_spec_again(http, apiserver):
    """As kube-apiserver's status strategies: /status validates the status; the spec it keeps
    is the stored one, so an object stored before a rule existed keeps getting its status."""
    path = "/apis/apps/v1/namespaces/default/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "old"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "old"}},
                    "template": {"metadata": {"labels": {"app": "old"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert (await http.post(path, dep))[0] == 201

    async def older_rules(current: dict) -> dict:  # as a server without the rule stored it
        current["spec"]["progressDeadlineSeconds"] = -1
        return current
    await apiserver.state.storage.update(R.DEPLOYMENTS, "default", "old", older_rules)

    code, got = await http.patch(f"{path}/old/status", {"status": {"replicas": 1}},
                                 "application/merge-patch+json")
    assert code == 200 and got["status"]["replicas"] == 1, got
    code, status = await http.patch(f"{path}/old", {"metadata": {"labels": {"a": "b"}}},
                                    "application/merge-patch+json")
    assert code == 422 and "spec.progressDeadlineSeconds" in status["message"]
