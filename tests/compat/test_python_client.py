"""The official `kubernetes` Python client, unmodified, against the API server process."""
from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture
def core(apiserver_process) -> client.CoreV1Api:
    api = client.ApiClient(apiserver_process.pki.python_client(apiserver_process.url))
    yield client.CoreV1Api(api)
    api.close()


def service(name: str, port: int = 80) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1ServiceSpec(selector={"app": name}, ports=[client.V1ServicePort(port=port)]))


def pod(name: str) -> client.V1Pod:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"app": "web"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))


def test_services_create_list_patch_delete(core: client.CoreV1Api):
    created = core.create_namespaced_service("default", service("web"))
    assert created.spec.cluster_ip.startswith("10.96.")
    assert created.spec.ports[0].target_port == 80

    names = {s.metadata.name for s in core.list_namespaced_service("default").items}
    assert names == {"kubernetes", "web"}
    assert core.list_namespaced_service("kube-system").items == []

    patched = core.patch_namespaced_service("web", "default", {"metadata": {"labels": {"tier": "x"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "x"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    deleted = core.delete_namespaced_service("web", "default")
    assert isinstance(deleted, client.V1Service) and deleted.metadata.name == "web"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_service("web", "default")
    assert exc.value.status == 404


def test_pods_create_list_patch_delete(core: client.CoreV1Api):
    created = core.create_namespaced_pod("default", pod("p1"))
    assert created.status.phase == "Pending"
    assert created.spec.containers[0].image_pull_policy == "Always"  # an untagged image: latest
    assert [p.metadata.name for p in core.list_pod_for_all_namespaces().items] == ["p1"]
    selected = core.list_namespaced_pod("default", label_selector="app=web")
    assert [p.metadata.name for p in selected.items] == ["p1"]

    patched = core.patch_namespaced_pod("p1", "default", {"metadata": {"annotations": {"a": "b"}}})
    assert patched.metadata.annotations == {"a": "b"}

    deleted = core.delete_namespaced_pod("p1", "default")
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.name == "p1"
    assert core.list_namespaced_pod("default").items == []


def test_watch_stream_sees_added_modified_deleted(core: client.CoreV1Api):
    seen: list[tuple[str, str]] = []
    started = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        started.set()
        for ev in w.stream(core.list_namespaced_service, "default", timeout_seconds=6):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED" and ev["object"].metadata.name == "web":
                w.stop()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    started.wait()
    time.sleep(0.5)
    core.create_namespaced_service("default", service("web"))
    core.patch_namespaced_service("web", "default", {"metadata": {"labels": {"v": "2"}}})
    core.delete_namespaced_service("web", "default")
    t.join(timeout=15)
    assert not t.is_alive()
    assert ("ADDED", "kubernetes") in seen  # synthetic ADDED for what exists
    web = [etype for etype, name in seen if name == "web"]
    assert web == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_from_before_the_cache_is_an_error_event_in_a_200_stream(core: client.CoreV1Api):
    # the server's watch cache starts at the etcd revision it listed from, well past 1
    # (the client turns the ERROR event into an exception, after one retry of its own)
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(core.list_namespaced_service, "default",
                                  resource_version="1", timeout_seconds=3))
    assert exc.value.status == 410 and exc.value.reason.startswith("Expired: too old")


def test_watch_true_in_either_spelling(core: client.CoreV1Api, apiserver_process):
    import json
    import urllib.request

    for spelling in ("true", "True", "1"):
        url = (f"{apiserver_process.url}/api/v1/namespaces/default/services?watch={spelling}"
               "&timeoutSeconds=1")
        with urllib.request.urlopen(url, timeout=10, context=apiserver_process.config.ssl_context()) as resp:
            first = json.loads(resp.readline())
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "kubernetes"


def test_list_pages_with_limit_and_continue(core: client.CoreV1Api):
    for i in range(7):
        core.create_namespaced_service("default", service(f"web-{i}"))
    first = core.list_namespaced_service("default", limit=3)
    assert [s.metadata.name for s in first.items] == ["kubernetes", "web-0", "web-1"]
    assert first.metadata.remaining_item_count == 5 and first.metadata._continue
    names, page = [], first
    while True:
        names += [s.metadata.name for s in page.items]
        assert page.metadata.resource_version == first.metadata.resource_version
        if not page.metadata._continue:
            break
        page = core.list_namespaced_service("default", limit=3, _continue=page.metadata._continue)
    assert names == ["kubernetes"] + [f"web-{i}" for i in range(7)]

    with pytest.raises(ApiException) as exc:
        core.list_namespaced_service("default", limit=3, _continue="not-a-token")
    assert exc.value.status == 400


def test_list_at_an_exact_resource_version(core: client.CoreV1Api):
    core.create_namespaced_service("default", service("old"))
    rv = core.list_namespaced_service("default").metadata.resource_version
    core.create_namespaced_service("default", service("new"))
    then = core.list_namespaced_service("default", resource_version=rv,
                                        resource_version_match="Exact")
    assert then.metadata.resource_version == rv
    assert [s.metadata.name for s in then.items] == ["kubernetes", "old"]
    now = core.list_namespaced_service("default", resource_version=rv,
                                       resource_version_match="NotOlderThan")
    assert [s.metadata.name for s in now.items] == ["kubernetes", "new", "old"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_service("default", resource_version_match="Exact")
    assert exc.value.status == 422 and "resourceVersionMatch is forbidden" in exc.value.body


def test_watch_list_initial_events_then_the_end_bookmark(core: client.CoreV1Api):
    core.create_namespaced_service("default", service("present"))
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_service, "default", send_initial_events=True,
                          resource_version_match="NotOlderThan", allow_watch_bookmarks=True,
                          timeout_seconds=5):
        seen.append(event)
        if event["type"] == "BOOKMARK":
            break
    w.stop()
    *added, mark = seen
    assert sorted(e["object"].metadata.name for e in added) == ["kubernetes", "present"]
    annotations = mark["raw_object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_delete_options_as_the_client_sends_them(core: client.CoreV1Api):
    """propagation_policy as a query parameter, or in a V1DeleteOptions body; refused ones
    are 422 Status answers. No garbage collector runs: the finalizers stay."""
    import json

    apps = client.AppsV1Api(core.api_client)
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": "web"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))
    apps.create_namespaced_deployment("default", client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"app": "web"}),
                                     template=template)))
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    marked = apps.read_namespaced_deployment("web", "default")
    assert marked.metadata.finalizers == ["orphan"] and marked.metadata.deletion_timestamp
    apps.delete_namespaced_deployment(
        "web", "default", body=client.V1DeleteOptions(propagation_policy="Foreground"))
    assert apps.read_namespaced_deployment("web", "default").metadata.finalizers == \
        ["foregroundDeletion"]
    for kwargs in ({"propagation_policy": "Sideways"},
                   {"propagation_policy": "Orphan", "orphan_dependents": True}):
        with pytest.raises(ApiException) as exc:
            apps.delete_namespaced_deployment("web", "default", **kwargs)
        status = json.loads(exc.value.body)
        assert exc.value.status == 422 and status["reason"] == "Invalid"
        assert status["details"]["kind"] == "DeleteOptions"
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Background")
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("web", "default")
    assert exc.value.status == 404
