"""Store, reflector and informer: against the real API server over real etcd, including
an API server killed mid-watch and an etcd compaction that forces a relist."""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess

import pytest

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory, wait_for_cache_sync
from kubecore.informer.informer import Informer
from kubecore.informer.store import Store, object_key, split_key
from tests.conftest import ApiServer, SessionPki, api_settings


def service(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, **labels}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


def pod(name: str, node: str = "") -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


async def until(cond, timeout: float = 20.0, what: str = "condition") -> None:
    async def poll():
        while not cond():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Recorder:
    """Handlers that remember what they were told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (what, key, resourceVersion)
        self.updates: list[tuple[dict, dict]] = []

    def on_add(self, obj):
        self.events.append(("add", object_key(obj), obj["metadata"]["resourceVersion"]))

    async def on_update(self, old, new):
        await asyncio.sleep(0)
        self.updates.append((old, new))
        self.events.append(("update", object_key(new), new["metadata"]["resourceVersion"]))

    def on_delete(self, obj):
        self.events.append(("delete", object_key(obj), obj["metadata"]["resourceVersion"]))

    def keys(self, what: str) -> list[str]:
        return [k for w, k, _ in self.events if w == what]

    def attach(self, informer: Informer) -> Recorder:
        informer.add_handlers(self.on_add, self.on_update, self.on_delete)
        return self


def store_versions(informer: Informer) -> dict[str, str]:
    return {k: informer.store.get(k)["metadata"]["resourceVersion"] for k in informer.store.keys()}


async def server_versions(client: ApiClient, rt=R.SERVICES, ns: str | None = None) -> dict[str, str]:
    items, _ = await client.list(rt, ns)
    return {object_key(o): o["metadata"]["resourceVersion"] for o in items}


async def converged(informer: Informer, client: ApiClient, timeout: float = 20.0) -> dict[str, str]:
    """Wait until the informer's store holds exactly what the server holds."""
    want: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        want = await server_versions(client, informer.rt, informer.reflector.namespace)
        if store_versions(informer) == want:
            return want
        await asyncio.sleep(0.05)
    assert store_versions(informer) == want


# -- the store, pure --------------------------------------------------------------------

def test_store_keys_and_indexes_follow_changes():
    store = Store({"by_node": lambda p: [p["spec"].get("nodeName", "")]})
    a = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    b = {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    node = {"metadata": {"name": "n1"}, "spec": {}}
    store.upsert(a)
    store.upsert(b)
    store.upsert(node)
    assert sorted(store.keys()) == ["n1", "ns/a", "ns/b"]
    assert [object_key(o) for o in store.by_index("by_node", "n1")] == ["ns/a", "ns/b"]
    moved = {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n2"}}
    assert store.upsert(moved) is a
    assert [object_key(o) for o in store.by_index("by_node", "n1")] == ["ns/b"]
    assert store.by_index("by_node", "n2") == [moved]
    assert store.remove("ns/b") is b
    assert store.by_index("by_node", "n1") == []
    assert "n1" not in store.index_values("by_node")
    assert store.get_object("a", "ns") is moved and store.get_object("n1") is node
    store.add_indexers({"by_ns": lambda o: [o["metadata"].get("namespace", "")]})  # late: built
    assert [object_key(o) for o in store.by_index("by_ns", "ns")] == ["ns/a"]
    with pytest.raises(KeyError):
        store.by_index("nope", "x")


@pytest.mark.parametrize("key, parts", [("ns/name", ("ns", "name")), ("node-a", (None, "node-a"))],
                         ids=["namespaced", "cluster-scoped"])
def test_split_key(key, parts):
    assert split_key(key) == parts


def test_a_failing_indexer_does_not_break_the_store():
    store = Store({"by_node": lambda p: [p["spec"]["nodeName"]]})
    store.upsert({"metadata": {"name": "x", "namespace": "d"}, "spec": {}})
    assert store.keys() == ["d/x"] and store.index_values("by_node") == []


# -- against the API server ----------------------------------------------------------------

@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config, timeout=10) as c:
        yield c


async def test_store_equals_the_server_after_a_burst(client):
    informer = Informer(client, R.SERVICES)
    rec = Recorder().attach(informer)
    await informer.start()
    try:
        assert await wait_for_cache_sync(informer, timeout=10)
        assert informer.has_synced() and "default/kubernetes" in informer.store
        rng = random.Random(7)
        names = [f"s{i}" for i in range(30)]

        async def churn(name: str) -> None:
            await client.create(R.SERVICES, service(name))
            for _ in range(rng.randint(0, 3)):
                await client.patch(R.SERVICES, name, {"metadata": {"labels": {"n": str(rng.random())[:8]}}},
                                   "default")
            if rng.random() < 0.4:
                await client.delete(R.SERVICES, name, "default")

        await asyncio.gather(*(churn(n) for n in names))
        final = await converged(informer, client)
        assert len(final) > 1
        deleted = set(rec.keys("delete"))
        assert deleted == {f"default/{n}" for n in names} - set(final)
        assert set(rec.keys("add")) == set(final) | deleted
        # the last thing a handler heard of each live object is its current version
        last = {}
        for _what, key, rv in rec.events:
            last[key] = rv
        assert {k: last[k] for k in final} == final
    finally:
        await informer.stop()


async def test_handlers_see_add_update_delete_and_a_failing_handler_is_contained(client):
    informer = Informer(client, R.SERVICES, namespace="default")
    calls: list[str] = []

    def broken(obj):
        calls.append("broken")
        raise RuntimeError("handler bug")

    informer.add_handlers(on_add=broken)
    rec = Recorder().attach(informer)
    await informer.start()
    try:
        assert await wait_for_cache_sync(informer, timeout=10)
        created = await client.create(R.SERVICES, service("web"))
        await until(lambda: "default/web" in rec.keys("add"), what="add")
        updated = await client.patch(R.SERVICES, "web", {"metadata": {"labels": {"v": "2"}}}, "default")
        await until(lambda: "default/web" in rec.keys("update"), what="update")
        old, new = rec.updates[-1]
        assert old["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert new == updated
        await client.delete(R.SERVICES, "web", "default")
        await until(lambda: "default/web" in rec.keys("delete"), what="delete")
        assert [w for w, k, _ in rec.events if k == "default/web"] == ["add", "update", "delete"]
        assert informer.store.get("default/web") is None
        assert calls.count("broken") == 2  # kubernetes, then web: still called after raising

        # a handler added late hears about what is already there
        late: list[str] = []
        informer.add_handlers(on_add=lambda o: late.append(object_key(o)))
        await until(lambda: late == ["default/kubernetes"], what="late handler catch-up")
    finally:
        await informer.stop()


async def test_indexes_and_selectors(client):
    await client.create(R.NODES, {"metadata": {"name": "node-a"}})
    await client.create(R.PODS, pod("p1", "node-a"))
    await client.create(R.PODS, pod("p2"))
    informer = Informer(client, R.PODS, indexers={
        "by_node": lambda p: [p["spec"].get("nodeName", "")]})
    unbound = Informer(client, R.PODS, field_selector="spec.nodeName=")
    await informer.start()
    await unbound.start()
    try:
        assert await wait_for_cache_sync(informer, unbound, timeout=10)
        assert [object_key(p) for p in informer.store.by_index("by_node", "node-a")] == ["default/p1"]
        assert [object_key(p) for p in informer.store.by_index("by_node", "")] == ["default/p2"]
        assert unbound.store.keys() == ["default/p2"]
        await client.bind("default", "p2", "node-a")
        await until(lambda: len(informer.store.by_index("by_node", "node-a")) == 2, what="index")
        assert informer.store.by_index("by_node", "") == []
        # leaving the selector is a deletion for the selective informer
        await until(lambda: len(unbound.store) == 0, what="selector exit")
    finally:
        await informer.stop()
        await unbound.stop()


async def test_bookmarks_advance_the_version_without_events(etcd):
    server = await ApiServer(api_settings(etcd, bookmark_interval=0.2)).start()
    try:
        async with ApiClient(server.config) as c:
            informer = Informer(c, R.SERVICES, namespace="default")
            rec = Recorder().attach(informer)
            await informer.start()
            try:
                assert await wait_for_cache_sync(informer, timeout=10)
                before = len(rec.events)
                other = await c.create(R.SERVICES, service("elsewhere", ns="kube-system"))
                rv = int(other["metadata"]["resourceVersion"])
                await until(lambda: int(informer.last_sync_resource_version or 0) >= rv,
                            what="bookmark")
                assert len(rec.events) == before
                assert "kube-system/elsewhere" not in informer.store
            finally:
                await informer.stop()
    finally:
        await server.stop()


async def test_periodic_resync_redelivers_updates(client):
    informer = Informer(client, R.SERVICES, namespace="default", resync_period=0.1)
    rec = Recorder().attach(informer)
    await informer.start()
    try:
        await until(lambda: len(rec.updates) >= 2, what="resyncs")
        old, new = rec.updates[0]
        assert old is new and object_key(new) == "default/kubernetes"
    finally:
        await informer.stop()


async def test_shared_factory_hands_out_one_informer_per_watch(client):
    factory = SharedInformerFactory(client)
    a = factory.informer(R.SERVICES)
    b = factory.informer(R.SERVICES, indexers={"by_ns": lambda o: [o["metadata"]["namespace"]]})
    c = factory.informer(R.SERVICES, namespace="default")
    nodes = factory.informer(R.NODES, namespace="ignored-for-cluster-scope")
    assert a is b and a is not c and nodes is factory.informer(R.NODES)
    assert len(factory.informers) == 3
    await factory.start()
    try:
        assert await factory.wait_for_cache_sync(timeout=10)
        assert factory.has_synced()
        assert [object_key(o) for o in a.store.by_index("by_ns", "default")] == ["default/kubernetes"]
        late = factory.informer(R.PODS)  # asked for after start: started too
        assert await wait_for_cache_sync(late, timeout=10)
    finally:
        await factory.stop()


async def test_informer_waits_for_an_api_server_that_is_not_there_yet(etcd):
    settings = api_settings(etcd)
    async with ApiClient(SessionPki.get().config(f"https://127.0.0.1:{settings.port}")) as c:
        informer = Informer(c, R.SERVICES)
        await informer.start()
        try:
            assert not await wait_for_cache_sync(informer, timeout=0.5)
            server = await ApiServer(settings).start()
            try:
                assert await wait_for_cache_sync(informer, timeout=15)
                assert "default/kubernetes" in informer.store
            finally:
                await informer.stop()  # first: the server's shutdown waits for open watches
                await server.stop()
        finally:
            await informer.stop()


# -- failures: a killed API server, a compacted etcd --------------------------------------

async def _changes_while_down(etcd) -> tuple[set[str], set[str], set[str]]:
    """With the watched server down, change things through a second API server."""
    other = await ApiServer(api_settings(etcd)).start()
    try:
        async with ApiClient(other.config) as c:
            for i in range(3):
                await c.delete(R.SERVICES, f"keep{i}", "default")
            await c.patch(R.SERVICES, "change", {"metadata": {"labels": {"v": "down"}}}, "default")
            for i in range(3):
                await c.create(R.SERVICES, service(f"new{i}"))
            await c.create(R.SERVICES, service("brief"))
            await c.delete(R.SERVICES, "brief", "default")
    finally:
        await other.stop()
    return ({f"default/keep{i}" for i in range(3)}, {"default/change"},
            {f"default/new{i}" for i in range(3)})


async def test_survives_an_api_server_killed_and_restarted(etcd, apiserver_process):
    async with ApiClient(apiserver_process.config, timeout=5) as c:
        for name in ["keep0", "keep1", "keep2", "change", "stay"]:
            await c.create(R.SERVICES, service(name))
        informer = Informer(c, R.SERVICES, backoff_cap=1.0)
        rec = Recorder().attach(informer)
        await informer.start()
        try:
            assert await wait_for_cache_sync(informer, timeout=10)
            await c.create(R.SERVICES, service("during-watch"))
            await until(lambda: "default/during-watch" in informer.store, what="watch running")

            apiserver_process.kill()  # SIGKILL mid-watch
            deleted, changed, added = await _changes_while_down(etcd)
            await asyncio.sleep(0.5)  # let the reflector fail against the dead port a few times
            assert informer.has_synced()  # the cache stays usable while the server is away
            apiserver_process.start()

            final = await converged(informer, c)
            assert deleted.isdisjoint(final) and added <= set(final)
            assert set(rec.keys("delete")) == deleted
            assert added <= set(rec.keys("add"))
            assert "default/brief" not in rec.keys("add")  # born and gone while down
            assert "default/change" in rec.keys("update")
            assert informer.store.get("default/change")["metadata"]["labels"]["v"] == "down"
            assert informer.reflector.rewatches >= 1

            # and the watch goes on after the restart
            await c.delete(R.SERVICES, "stay", "default")
            await until(lambda: "default/stay" in rec.keys("delete"), what="delete after restart")
            await converged(informer, c)
        finally:
            await informer.stop()


def etcd_revision(endpoint: str) -> int:
    out = subprocess.run(["etcdctl", "--endpoints", endpoint, "endpoint", "status", "-w", "json"],
                         check=True, capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})
    return int(json.loads(out.stdout)[0]["Status"]["header"]["revision"])


def etcd_compact(endpoint: str, revision: int) -> None:
    subprocess.run(["etcdctl", "--endpoints", endpoint, "compact", str(revision)], check=True,
                   capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})


async def test_etcd_compaction_forces_a_relist_that_delivers_differences(etcd, apiserver_process):
    async with ApiClient(apiserver_process.config, timeout=5) as c:
        for name in ["keep0", "keep1", "keep2", "change", "stay"]:
            await c.create(R.SERVICES, service(name))
        informer = Informer(c, R.SERVICES, backoff_cap=1.0)
        rec = Recorder().attach(informer)
        await informer.start()
        try:
            assert await wait_for_cache_sync(informer, timeout=10)
            seen_rv = int(informer.last_sync_resource_version)
            assert informer.reflector.relists == 1

            apiserver_process.kill()
            deleted, changed, added = await _changes_while_down(etcd)
            rev = etcd_revision(etcd.endpoint)
            etcd_compact(etcd.endpoint, rev)
            assert rev > seen_rv  # the informer's version is now gone from etcd's history
            apiserver_process.start()  # its watch window starts after the compaction

            final = await converged(informer, c)
            assert informer.reflector.relists >= 2  # told 410, it listed again
            assert set(rec.keys("delete")) == deleted
            assert added <= set(rec.keys("add")) and "default/brief" not in rec.keys("add")
            assert "default/change" in rec.keys("update")
            assert "default/stay" in final
            # nothing that did not change is re-announced by the relist
            assert "default/stay" not in rec.keys("update")
            assert rec.keys("add").count("default/stay") == 1
        finally:
            await informer.stop()


async def test_a_dropped_watch_resumes_from_the_last_version_without_relisting(apiserver_process):
    async with ApiClient(apiserver_process.config, timeout=5) as c:
        await c.create(R.SERVICES, service("a"))
        informer = Informer(c, R.SERVICES, backoff_cap=1.0)
        rec = Recorder().attach(informer)
        await informer.start()
        try:
            assert await wait_for_cache_sync(informer, timeout=10)
            apiserver_process.kill()
            await asyncio.sleep(0.3)
            apiserver_process.start()  # nothing changed meanwhile: the version is still served
            await c.create(R.SERVICES, service("b"))
            await until(lambda: "default/b" in informer.store, what="event after restart")
            assert informer.reflector.relists == 1 and informer.reflector.rewatches >= 1
            assert sorted(rec.keys("add")) == ["default/a", "default/b", "default/kubernetes"]
            assert rec.keys("delete") == [] and rec.keys("update") == []
        finally:
            await informer.stop()
