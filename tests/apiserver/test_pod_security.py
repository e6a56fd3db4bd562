"""Pod Security Admission over HTTP against a real API server and etcd: a refused pod is a 403
Status, warnings are `Warning` headers, namespace labels are checked as they are written."""
from __future__ import annotations

import json

PODS = "/api/v1/namespaces/{ns}/pods"
P = "pod-security.kubernetes.io/"


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec}}


async def post(http, path: str, body: dict) -> tuple[int, dict, list[str]]:
    async with http.session.post(path, data=json.dumps(body),
                                 headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json(), r.headers.getall("Warning", [])


async def test_a_pod_the_namespace_forbids_is_a_403_status(apiserver, http):
    status, body, _ = await post(http, PODS.format(ns="default"), pod("host", hostNetwork=True))
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "host" is forbidden: violates PodSecurity "baseline:latest": '
                               "host namespaces (hostNetwork=true)",
                    "reason": "Forbidden", "details": {"name": "host", "kind": "pods"}, "code": 403}
    assert (await http.get(f"{PODS.format(ns='default')}/host"))[0] == 404
    status, _, _ = await post(http, PODS.format(ns="kube-system"), pod("host", hostNetwork=True))
    assert status == 201


async def test_warn_labels_answer_warning_headers(apiserver, http):
    ns = {"metadata": {"name": "soft", "labels": {P + "warn": "restricted"}}}
    assert (await http.post("/api/v1/namespaces", ns))[0] == 201
    status, _, warnings = await post(http, PODS.format(ns="soft"), pod("plain"))
    assert status == 201
    assert len(warnings) == 1 and warnings[0].startswith(
        '299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation != false '
        '(container \\"app\\" must set securityContext.allowPrivilegeEscalation=false)')


async def test_invalid_labels_are_a_422_and_a_tightened_level_warns(apiserver, http):
    status, body = await http.post("/api/v1/namespaces", {"metadata": {"name": "bad", "labels": {
        P + "enforce": "strict"}}})
    assert status == 422 and body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.labels[pod-security.kubernetes.io/enforce]",
        "message": 'Invalid value: "strict": must be one of privileged, baseline, restricted'}]
    await http.post("/api/v1/namespaces", {"metadata": {"name": "ops", "labels": {
        P + "enforce": "privileged", P + "warn": "privileged"}}})
    assert (await post(http, PODS.format(ns="ops"), pod("host", hostNetwork=True)))[0] == 201
    async with http.session.patch("/api/v1/namespaces/ops", data=json.dumps(
            {"metadata": {"labels": {P + "enforce": "baseline"}}}),
            headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200
        assert r.headers.getall("Warning") == [
            '299 - "existing pods in namespace \\"ops\\" violate the new PodSecurity enforce level '
            '\\"baseline:latest\\""', '299 - "host: host namespaces"']
