"""The recording fake API client answers as the API server does where controllers look."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, not_found
from kubecore.client.rest import Expired, WatchEvent
from tests.fakes.api import FakeApiClient

POD = {"metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def code_of(awaitable) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        await awaitable
    return info.value.code, info.value.reason


async def test_create_get_and_the_errors_of_missing_and_existing_objects():
    api = FakeApiClient()
    pod = await api.create(R.PODS, POD)
    meta = pod["metadata"]
    assert (pod["kind"], meta["namespace"], meta["resourceVersion"]) == ("Pod", "default", "1")
    assert meta["uid"] and meta["creationTimestamp"]
    assert await api.get(R.PODS, "p", "default") == pod
    assert await code_of(api.create(R.PODS, POD)) == (409, "AlreadyExists")
    assert await code_of(api.get(R.PODS, "q", "default")) == (404, "NotFound")
    generated = await api.create(R.PODS, {**POD, "metadata": {"generateName": "web-"}})
    assert generated["metadata"]["name"].startswith("web-")
    assert await code_of(api.create(R.PODS, {"metadata": {"name": "Bad_Name"}})) == (422, "Invalid")


async def test_writes_compare_resource_versions_and_keep_the_other_half():
    api = FakeApiClient()
    pod = await api.create(R.PODS, POD)
    patched = await api.patch(R.PODS, "p", {"status": {"phase": "Running"}}, "default",
                              subresource="status")
    assert patched["status"]["phase"] == "Running"
    stale = {**pod, "spec": {**pod["spec"], "activeDeadlineSeconds": 5}}
    assert await code_of(api.replace(R.PODS, stale)) == (409, "Conflict")
    fresh = {**patched, "status": {"phase": "Failed"}, "metadata": {**patched["metadata"],
                                                                     "labels": {"app": "x"}}}
    replaced = await api.replace(R.PODS, fresh)
    assert replaced["status"]["phase"] == "Running"  # a main-resource write keeps the status
    assert replaced["metadata"]["labels"] == {"app": "x"}
    assert int(replaced["metadata"]["resourceVersion"]) > int(patched["metadata"]["resourceVersion"])
    cas = {"metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]}}
    assert await code_of(api.patch(R.PODS, "p", cas, "default")) == (409, "Conflict")


async def test_delete_preconditions_and_finalizers():
    api = FakeApiClient()
    rs = {"metadata": {"name": "rs", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    created = await api.create(R.REPLICASETS, rs)
    assert await code_of(api.delete(R.REPLICASETS, "rs", "default",
                                    preconditions={"uid": "other"})) == (409, "Conflict")
    marked = await api.delete(R.REPLICASETS, "rs", "default", propagation_policy="Foreground",
                              preconditions={"uid": created["metadata"]["uid"]})
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert marked["metadata"]["deletionTimestamp"]
    assert api.stored(R.REPLICASETS, "rs", "default") is not None
    await api.patch(R.REPLICASETS, "rs", {"metadata": {"finalizers": None}}, "default")
    assert api.stored(R.REPLICASETS, "rs", "default") is None
    assert await code_of(api.delete(R.REPLICASETS, "rs", "default")) == (404, "NotFound")


async def test_a_pod_on_a_node_is_deleted_gracefully():
    api = FakeApiClient()
    await api.create(R.PODS, POD)
    await api.bind("default", "p", "n1")
    assert await code_of(api.bind("default", "p", "n2")) == (409, "Conflict")
    marked = await api.delete(R.PODS, "p", "default")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    await api.delete(R.PODS, "p", "default", grace_period_seconds=0)
    assert api.stored(R.PODS, "p", "default") is None


async def next_events(stream, n: int) -> list[tuple[str, str]]:
    out: list[WatchEvent] = []
    async for event in stream:
        out.append(event)
        if len(out) == n:
            break
    return [(e.type, e.object["metadata"]["name"]) for e in out]


async def test_watch_follows_a_list_and_applies_selectors_as_the_server_does():
    api = FakeApiClient()
    await api.create(R.PODS, POD)
    items, rv = await api.list(R.PODS, "default", label_selector="app=web")
    assert [p["metadata"]["name"] for p in items] == ["p"]
    stream = api.watch(R.PODS, "default", resource_version=rv, label_selector="app=web")
    async with contextlib.aclosing(stream):
        waiting = asyncio.ensure_future(next_events(stream, 4))
        await asyncio.sleep(0)
        await api.create(R.PODS, {**POD, "metadata": {**POD["metadata"], "name": "q"}})
        await api.create(R.PODS, {**POD, "metadata": {"name": "other", "labels": {"app": "db"}}})
        await api.patch(R.PODS, "p", {"metadata": {"labels": {"app": "db"}}}, "default")  # leaves
        await api.patch(R.PODS, "other", {"metadata": {"labels": {"app": "web"}}}, "default")
        await api.delete(R.PODS, "q", "default")
        assert await asyncio.wait_for(waiting, 5) == [
            ("ADDED", "q"), ("DELETED", "p"), ("ADDED", "other"), ("DELETED", "q")]


async def test_a_watch_without_version_starts_with_the_objects_and_old_versions_expire():
    api = FakeApiClient()
    api.preload(R.NODES, {"metadata": {"name": "n1"}})
    stream = api.watch(R.NODES, timeout_seconds=1)
    async with contextlib.aclosing(stream):
        assert await next_events(stream, 1) == [("ADDED", "n1")]
    api.preload(R.NODES, {"metadata": {"name": "n2"}})
    api.compact()
    with pytest.raises(Expired):
        await anext(api.watch(R.NODES, resource_version="1"))
    assert [e async for e in api.watch(R.NODES, resource_version=str(api.revision),
                                       timeout_seconds=0)] == []


async def test_every_call_is_recorded_and_failures_are_injected():
    api = FakeApiClient()
    api.fail("get", R.PODS, "p", error=not_found("pods", "p"))
    await api.create(R.PODS, POD)
    assert await code_of(api.get(R.PODS, "p", "default")) == (404, "NotFound")
    await api.get(R.PODS, "p", "default")  # only the first failed
    await api.patch(R.PODS, "p", {"status": {"phase": "Running"}}, "default", subresource="status")
    await api.list(R.PODS)
    assert [str(c) for c in api.calls] == ["create pods/default/p", "get pods/default/p",
                                           "get pods/default/p", "patch pods/default/p status",
                                           "list pods"]
    assert api.writes() == ["create pods/default/p", "patch pods/default/p status"]
    assert api.calls[3].body == {"status": {"phase": "Running"}}
