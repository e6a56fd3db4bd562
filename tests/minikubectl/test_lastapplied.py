import json

import pytest

from kubecore.api.patch import strategic_merge_patch
from minikubectl.lastapplied import LAST_APPLIED, go_json, last_applied, modified_configuration, three_way_patch


def svc(ports, selector=None, labels=None):
    meta = {"name": "web", "namespace": "default"}
    if labels:
        meta["labels"] = labels
    spec = {"ports": ports}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def live(applied):
    """What the server holds after `applied` was applied: plus defaults and allocations."""
    obj = json.loads(json.dumps(modified_configuration(applied)))
    obj["metadata"].update(uid="u1", resourceVersion="5")
    obj["spec"].update(clusterIP="10.96.0.9", type="ClusterIP", sessionAffinity="None")
    for p in obj["spec"]["ports"]:
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p["port"])
    return obj


def apply(current, manifest):
    modified = modified_configuration(manifest)
    patch = three_way_patch(last_applied(current), modified, current, "Service")
    return patch, strategic_merge_patch(current, patch, "Service")


def test_annotation_is_kubectls_text():
    out = modified_configuration(svc([{"port": 80}]))
    text = out["metadata"]["annotations"][LAST_APPLIED]
    assert text == ('{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"name":"web",'
                    '"namespace":"default"},"spec":{"ports":[{"port":80}]}}\n')
    # applying again does not nest the old annotation
    again = modified_configuration(out)
    assert again["metadata"]["annotations"][LAST_APPLIED] == text


def test_go_json_escapes_html_characters():
    assert go_json({"b": "<a&b>", "a": 1}) == '{"a":1,"b":"\\u003ca\\u0026b\\u003e"}'


def test_same_manifest_gives_empty_patch():
    manifest = svc([{"port": 80}], {"app": "web"})
    patch, _ = apply(live(manifest), manifest)
    assert patch == {}


def test_changes_keep_server_fields_and_remove_dropped_ones():
    first = svc([{"name": "http", "port": 80}, {"name": "https", "port": 443}], {"app": "web"},
                labels={"tier": "front"})
    second = svc([{"name": "http", "port": 80, "targetPort": 8080}], {"app": "web2"})
    patch, result = apply(live(first), second)
    assert {"port": 443, "$patch": "delete"} in patch["spec"]["ports"]
    assert patch["spec"]["$setElementOrder/ports"] == [{"port": 80}]
    assert patch["metadata"]["labels"] is None
    assert result["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP",
                                        "targetPort": 8080}]
    assert result["spec"]["selector"] == {"app": "web2"}
    assert result["spec"]["clusterIP"] == "10.96.0.9"  # the server's, untouched
    assert "labels" not in result["metadata"]
    assert json.loads(result["metadata"]["annotations"][LAST_APPLIED]) == json.loads(
        modified_configuration(second)["metadata"]["annotations"][LAST_APPLIED])


def test_without_annotation_nothing_is_deleted():
    current = live(svc([{"port": 80}], {"app": "web"}, labels={"x": "y"}))
    del current["metadata"]["annotations"][LAST_APPLIED]
    patch, result = apply(current, svc([{"port": 80}], {"app": "web"}))
    assert "labels" not in patch["metadata"]
    assert result["metadata"]["labels"] == {"x": "y"}


def test_nested_keyed_lists_of_pod_templates():
    def deploy(image, ports):
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "default"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "web", "image": image, "ports": ports}]}}}}
    first = deploy("nginx:1", [{"containerPort": 80}, {"containerPort": 81}])
    current = json.loads(json.dumps(modified_configuration(first)))
    second = deploy("nginx:2", [{"containerPort": 80}])
    patch = three_way_patch(last_applied(current), modified_configuration(second), current,
                            "Deployment")
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "web" and container["image"] == "nginx:2"
    assert {"containerPort": 81, "$patch": "delete"} in container["ports"]
    result = strategic_merge_patch(current, patch, "Deployment")
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]}]


@pytest.mark.parametrize("annotations", [None, {}, {LAST_APPLIED: "not json"}, {LAST_APPLIED: "[]"}],
                         ids=["none", "empty", "garbage", "not-object"])
def test_unreadable_last_applied(annotations):
    assert last_applied({"metadata": {"annotations": annotations}}) is None
