"""The REST client against the real API server over real etcd."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable, Expired, WatchEvent, from_kubeconfig


def service(name: str, port: int = 80, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name, **labels}},
            "spec": {"selector": {"app": name}, "ports": [{"port": port}]}}


def pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config, timeout=10) as c:
        yield c


async def test_create_get_list_replace_patch_delete(client):
    created = await client.create(R.SERVICES, service("web"), namespace="default")
    assert created["metadata"]["namespace"] == "default"
    assert created["spec"]["clusterIP"]

    got = await client.get(R.SERVICES, "web", "default")
    assert got == created

    items, rv = await client.list(R.SERVICES, "default")
    assert {i["metadata"]["name"] for i in items} == {"kubernetes", "web"}
    assert int(rv) >= int(created["metadata"]["resourceVersion"])
    assert all(i["kind"] == "Service" and i["apiVersion"] == "v1" for i in items)

    got["metadata"]["labels"]["tier"] = "front"
    replaced = await client.replace(R.SERVICES, got)
    assert replaced["metadata"]["labels"]["tier"] == "front"
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    merged = await client.patch(R.SERVICES, "web", {"metadata": {"labels": {"tier": None, "x": "1"}}},
                                "default")
    assert merged["metadata"]["labels"] == {"app": "web", "x": "1"}
    jsoned = await client.patch(R.SERVICES, "web",
                                [{"op": "replace", "path": "/metadata/labels/x", "value": "2"}],
                                "default", patch_type="json")
    assert jsoned["metadata"]["labels"]["x"] == "2"
    strategic = await client.patch(R.SERVICES, "web", {"spec": {"ports": [{"port": 81, "name": "b"},
                                                                          {"port": 80, "name": "a"}]}},
                                   "default", patch_type="strategic")
    assert {p["port"] for p in strategic["spec"]["ports"]} == {80, 81}

    deleted = await client.delete(R.SERVICES, "web", "default")
    assert deleted["metadata"]["name"] == "web"
    with pytest.raises(ApiError) as err:
        await client.get(R.SERVICES, "web", "default")
    assert (err.value.code, err.value.reason) == (404, "NotFound")


async def test_selectors_on_list(client):
    await client.create(R.SERVICES, service("a", tier="front"))
    await client.create(R.SERVICES, service("b", tier="back"))
    items, _ = await client.list(R.SERVICES, "default", label_selector="tier=front")
    assert [i["metadata"]["name"] for i in items] == ["a"]
    items, _ = await client.list(R.SERVICES, field_selector="metadata.name=b")
    assert [i["metadata"]["name"] for i in items] == ["b"]


async def test_cluster_scoped_and_other_groups(client):
    node = await client.create(R.NODES, {"metadata": {"name": "node-a"}})
    assert "namespace" not in node["metadata"]
    assert (await client.get(R.NODES, "node-a"))["metadata"]["name"] == "node-a"
    deploy = {"metadata": {"name": "d", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "d"}},
                       "template": {"metadata": {"labels": {"app": "d"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    created = await client.create(R.DEPLOYMENTS, deploy)
    assert created["apiVersion"] == "apps/v1" and created["spec"]["replicas"] == 1
    scaled = await client.patch(R.DEPLOYMENTS, "d", {"spec": {"replicas": 3}}, "default",
                                subresource="scale")
    assert scaled["spec"]["replicas"] == 3


async def test_status_update_and_bind(client):
    await client.create(R.NODES, {"metadata": {"name": "node-a"}})
    created = await client.create(R.PODS, pod("p"), namespace="default")
    created["status"]["phase"] = "Running"
    updated = await client.update_status(R.PODS, created)
    assert updated["status"]["phase"] == "Running"

    await client.bind("default", "p", "node-a")
    bound = await client.get(R.PODS, "p", "default")
    assert bound["spec"]["nodeName"] == "node-a"
    with pytest.raises(ApiError) as err:
        await client.bind("default", "p", "node-b")
    assert err.value.code == 409

    # a bound pod's delete is graceful: marked, not gone
    marked = await client.delete(R.PODS, "p", "default", grace_period_seconds=30)
    assert marked["metadata"]["deletionTimestamp"]
    gone = await client.delete(R.PODS, "p", "default", grace_period_seconds=0)
    assert gone["metadata"]["name"] == "p"
    with pytest.raises(ApiError):
        await client.get(R.PODS, "p", "default")


@pytest.mark.parametrize("action, code, reason", [
    ("get-missing", 404, "NotFound"),
    ("create-twice", 409, "AlreadyExists"),
    ("invalid", 422, "Invalid"),
    ("stale-replace", 409, "Conflict"),
    ("missing-namespace", 404, "NotFound"),
], ids=str)
async def test_server_errors_become_api_errors(client, action, code, reason):
    await client.create(R.SERVICES, service("web"))
    with pytest.raises(ApiError) as err:
        if action == "get-missing":
            await client.get(R.SERVICES, "nope", "default")
        elif action == "create-twice":
            await client.create(R.SERVICES, service("web"))
        elif action == "invalid":
            await client.create(R.SERVICES, service("web2", port=70000))
        elif action == "stale-replace":
            current = await client.get(R.SERVICES, "web", "default")
            await client.patch(R.SERVICES, "web", {"metadata": {"labels": {"v": "2"}}}, "default")
            await client.replace(R.SERVICES, current)
        elif action == "missing-namespace":
            await client.create(R.SERVICES, service("web"), namespace="nowhere")
    assert (err.value.code, err.value.reason) == (code, reason)
    assert err.value.message
    assert not isinstance(err.value, Expired)


async def test_connection_refused_is_unavailable():
    async with ApiClient(f"http://127.0.0.1:{free_port()}", timeout=5) as c:
        with pytest.raises(ApiUnavailable):
            await c.get(R.SERVICES, "x", "default")
        with pytest.raises(ApiUnavailable):
            async for _ in c.watch(R.SERVICES):
                pass


async def next_events(stream, n: int, timeout: float = 10) -> list[WatchEvent]:
    out = []

    async def take():
        async for ev in stream:
            if ev.type != "BOOKMARK":
                out.append(ev)
                if len(out) == n:
                    return

    await asyncio.wait_for(take(), timeout)
    return out


async def test_watch_delivers_events_in_order(client):
    _, rv = await client.list(R.SERVICES, "default")
    stream = client.watch(R.SERVICES, "default", resource_version=rv)
    async with contextlib.aclosing(stream):
        await client.create(R.SERVICES, service("w1"))
        await client.patch(R.SERVICES, "w1", {"metadata": {"labels": {"v": "2"}}}, "default")
        await client.create(R.SERVICES, service("w2"))
        await client.delete(R.SERVICES, "w1", "default")
        events = await next_events(stream, 4)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"), ("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
    rvs = [int(e.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[1].object["metadata"]["labels"]["v"] == "2"


async def test_watch_from_a_resource_version_replays_later_events(client):
    _, rv = await client.list(R.SERVICES, "default")
    await client.create(R.SERVICES, service("late", tier="a"))
    await client.create(R.SERVICES, service("other", tier="b"))
    stream = client.watch(R.SERVICES, "default", resource_version=rv, label_selector="tier=a")
    async with contextlib.aclosing(stream):
        [ev] = await next_events(stream, 1)
    assert (ev.type, ev.object["metadata"]["name"]) == ("ADDED", "late")


async def test_watch_ends_cleanly_at_server_timeout(client):
    _, rv = await client.list(R.SERVICES, "default")
    seen = []
    async def consume():
        async for ev in client.watch(R.SERVICES, "default", resource_version=rv, timeout_seconds=1):
            seen.append(ev)
    await asyncio.wait_for(consume(), 15)
    assert all(e.type == "BOOKMARK" for e in seen)


async def test_watch_from_a_compacted_version_raises_expired(etcd, client):
    _, old_rv = await client.list(R.SERVICES, "default")
    await client.create(R.SERVICES, service("a"))
    # an API server started now keeps no events from before its start: old_rv is too old
    from tests.conftest import ApiServer, api_settings
    fresh = await ApiServer(api_settings(etcd)).start()
    try:
        async with ApiClient(fresh.config) as c2:
            with pytest.raises(Expired) as err:
                async for _ in c2.watch(R.SERVICES, "default", resource_version=old_rv):
                    pass
            assert err.value.code == 410 and err.value.reason == "Expired"
            assert isinstance(err.value, ApiError)
    finally:
        await fresh.stop()


async def test_watch_of_bad_selector_is_bad_request(client):
    with pytest.raises(ApiError) as err:
        async for _ in client.watch(R.SERVICES, label_selector="a in (b"):
            pass
    assert err.value.code == 400


def test_kubeconfig_current_context(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("""
apiVersion: v1
kind: Config
current-context: two
clusters:
- name: c1
  cluster: {server: "http://127.0.0.1:1111"}
- name: c2
  cluster: {server: "http://127.0.0.1:2222"}
contexts:
- name: one
  context: {cluster: c1, user: u}
- name: two
  context: {cluster: c2, user: u}
users:
- name: u
  user: {}
""")
    assert from_kubeconfig(cfg).base_url == "http://127.0.0.1:2222"
    assert from_kubeconfig(cfg, context="one").base_url == "http://127.0.0.1:1111"
    with pytest.raises(ValueError):
        from_kubeconfig(cfg, context="three")


async def test_watch_cut_by_a_killed_server_is_unavailable(apiserver_process):
    async with ApiClient(apiserver_process.config) as c:
        _, rv = await c.list(R.SERVICES, "default")
        stream = c.watch(R.SERVICES, "default", resource_version=rv)
        async with contextlib.aclosing(stream):
            await c.create(R.SERVICES, service("before"))
            [ev] = await next_events(stream, 1)
            assert ev.object["metadata"]["name"] == "before"
            apiserver_process.kill()
            with pytest.raises(ApiUnavailable):
                await asyncio.wait_for(next_events(stream, 1), 15)
