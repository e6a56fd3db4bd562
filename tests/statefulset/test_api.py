"""StatefulSets through the real API server and etcd: stored with kube's defaults, updates of
fixed fields refused in kube's words, the scale and status subresources, and bad input always
a 4xx Status that leaves the stored object as it was."""
from __future__ import annotations

from typing import Any

import pytest

from tests.statefulset.test_controller import statefulset

STS = "/apis/apps/v1/namespaces/default/statefulsets"


async def test_stored_with_kubes_defaults_and_served_with_scale_and_status(http):
    code, created = await http.post(STS, statefulset(replicas=2))
    assert code == 201, created
    spec = created["spec"]
    assert (spec["podManagementPolicy"], spec["revisionHistoryLimit"]) == ("OrderedReady", 10)
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert created["status"] == {"replicas": 0, "availableReplicas": 0}
    code, scale = await http.get(f"{STS}/web/scale")
    assert code == 200 and scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=web"
    code, _ = await http.req("PATCH", f"{STS}/web/scale", {"spec": {"replicas": 5}},
                             content_type="application/merge-patch+json")
    assert code == 200
    code, got = await http.get(f"{STS}/web")
    assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2
    code, body = await http.req("PATCH", f"{STS}/web/status", {"status": {"replicas": 1, "readyReplicas": 2}},
                                content_type="application/merge-patch+json")
    assert code == 422 and body["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "field": "status.readyReplicas",
         "message": "Invalid value: 2: cannot be greater than status.replicas"}]


async def test_a_fixed_field_is_refused_in_kubes_words(http):
    await http.post(STS, statefulset())
    code, body = await http.req("PATCH", f"{STS}/web", {"spec": {"serviceName": "other"}},
                                content_type="application/merge-patch+json")
    assert code == 422
    assert body["message"] == (
        'StatefulSet.apps "web" is invalid: spec: Forbidden: updates to statefulset spec for fields '
        "other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
    code, got = await http.get(f"{STS}/web")
    assert got["spec"]["serviceName"] == "nginx" and got["metadata"]["generation"] == 1


@pytest.mark.parametrize("spec", [
    {"updateStrategy": "RollingUpdate"},
    {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": "1"}}},
    {"replicas": "3"},
    {"ordinals": {"start": "x"}},
    {"ordinals": 1},
    {"volumeClaimTemplates": "data"},
    {"persistentVolumeClaimRetentionPolicy": ["Retain"]},
    {"podManagementPolicy": 7},
    {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "a", "operator": "Near"}]}},
    {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": "c"}}},
], ids=["strategy-string", "partition-string", "replicas-string", "start-string", "ordinals-number",
        "claims-string", "retention-list", "policy-number", "unknown-operator", "containers-string"])
async def test_bad_input_is_a_4xx_status_and_changes_nothing(http, spec: dict[str, Any]):
    code, body = await http.post(STS, statefulset(**spec))
    assert 400 <= code < 500 and body["kind"] == "Status", body
    await http.post(STS, statefulset(name="kept"))
    code, body = await http.req("PATCH", f"{STS}/kept", {"spec": spec},
                                content_type="application/merge-patch+json")
    assert 400 <= code < 500 and body["kind"] == "Status", body
    code, got = await http.get(f"{STS}/kept")
    assert code == 200 and got["metadata"]["generation"] == 1
