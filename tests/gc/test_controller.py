"""The garbage collector against a real API server."""
from __future__ import annotations

import asyncio

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.endpointslice.controller import EndpointSliceController
from services.gc.controller import GarbageCollector
from tests.support.controllers import create_pod, owner_ref, running, until


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


async def exists(client: ApiClient, rt, name: str, ns: str = "default") -> bool:
    try:
        await client.get(rt, name, ns)
        return True
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise


async def gone(client: ApiClient, rt, *names: str) -> bool:
    return not any([await exists(client, rt, n) for n in names])


def slice_body(name: str, owner: dict | None) -> dict:
    meta: dict = {"name": name, "namespace": "default"}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"metadata": meta, "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"]}]}


async def make_service(client: ApiClient, name: str) -> dict:
    return await client.create(R.SERVICES, {"metadata": {"name": name, "namespace": "default"},
                                            "spec": {"selector": {"app": name},
                                                     "ports": [{"port": 80}]}})


TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_service_deleted_its_slices_go_others_stay(client):
    web = await make_service(client, "web")
    db = await make_service(client, "db")
    for name, owner in [("web-a", web), ("web-b", web), ("db-a", db), ("loose", None)]:
        await client.create(R.ENDPOINTSLICES, slice_body(name, owner and owner_ref(owner)))
    async with running(GarbageCollector(client)):
        await asyncio.sleep(0.3)
        assert not await gone(client, R.ENDPOINTSLICES, "web-a")  # owner present: kept
        await client.delete(R.SERVICES, "web", "default")
        await until(lambda: gone(client, R.ENDPOINTSLICES, "web-a", "web-b"))
        assert await exists(client, R.ENDPOINTSLICES, "db-a")
        assert await exists(client, R.ENDPOINTSLICES, "loose")


async def test_controller_made_slices_go_with_their_service(client):
    await make_service(client, "web")
    await create_pod(client, "web-1", labels={"app": "web"}, ip="10.1.0.1")
    # Only the collector deletes here: the EndpointSlice controller is stopped first.
    async with running(EndpointSliceController(client)):
        async def made():
            items, _ = await client.list(R.ENDPOINTSLICES, "default",
                                         label_selector="kubernetes.io/service-name=web")
            return items
        (made_slice,) = await until(made)
    await client.delete(R.SERVICES, "web", "default")
    async with running(GarbageCollector(client)):
        await until(lambda: gone(client, R.ENDPOINTSLICES, made_slice["metadata"]["name"]))


async def test_deployment_deleted_replicasets_then_pods_go(client):
    deploy = await client.create(R.DEPLOYMENTS, {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
    rs = await client.create(R.REPLICASETS, {
        "metadata": {"name": "web-123", "namespace": "default",
                     "ownerReferences": [owner_ref(deploy)]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
    for name in ("web-123-a", "web-123-b"):
        await create_pod(client, name, owner=owner_ref(rs))
    await create_pod(client, "bystander")
    async with running(GarbageCollector(client)):
        await asyncio.sleep(0.3)
        assert await exists(client, R.PODS, "web-123-a")
        await client.delete(R.DEPLOYMENTS, "web", "default")
        await until(lambda: gone(client, R.REPLICASETS, "web-123"))
        await until(lambda: gone(client, R.PODS, "web-123-a", "web-123-b"))
        assert await exists(client, R.PODS, "bystander")


async def test_daemonset_deleted_its_pods_and_revisions_go(client):
    ds = await client.create(R.DAEMONSETS, {
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
    await client.create(R.CONTROLLERREVISIONS, {
        "metadata": {"name": "agent-1", "namespace": "default", "ownerReferences": [owner_ref(ds)]},
        "data": {"spec": {"template": TEMPLATE}}, "revision": 1})
    await create_pod(client, "agent-a", owner=owner_ref(ds))
    async with running(GarbageCollector(client)):
        await asyncio.sleep(0.3)
        assert await exists(client, R.CONTROLLERREVISIONS, "agent-1")
        await client.delete(R.DAEMONSETS, "agent", "default")
        await until(lambda: gone(client, R.CONTROLLERREVISIONS, "agent-1"))
        await until(lambda: gone(client, R.PODS, "agent-a"))


async def test_orphans_found_at_start_and_replaced_owners(client):
    old = await make_service(client, "web")
    await client.delete(R.SERVICES, "web", "default")
    new = await make_service(client, "web")  # same name, another uid
    await client.create(R.ENDPOINTSLICES, slice_body("of-old", owner_ref(old)))
    await client.create(R.ENDPOINTSLICES, slice_body("of-new", owner_ref(new)))
    async with running(GarbageCollector(client)):
        await until(lambda: gone(client, R.ENDPOINTSLICES, "of-old"))
        await asyncio.sleep(0.3)
        assert await exists(client, R.ENDPOINTSLICES, "of-new")


async def test_one_owner_of_two_gone_drops_only_that_reference(client):
    web = await make_service(client, "web")
    db = await make_service(client, "db")
    await client.create(R.ENDPOINTSLICES, {**slice_body("shared", None), "metadata": {
        "name": "shared", "namespace": "default",
        "ownerReferences": [owner_ref(web), owner_ref(db, controller=False)]}})
    async with running(GarbageCollector(client)):
        await client.delete(R.SERVICES, "db", "default")

        async def dropped():
            s = await client.get(R.ENDPOINTSLICES, "shared", "default")
            return [r["name"] for r in s["metadata"]["ownerReferences"]] == ["web"]
        await until(dropped)


async def test_owners_of_kinds_not_watched_are_asked_of_the_api_server(client):
    web = await make_service(client, "web")
    ghost = {**owner_ref(web), "name": "ghost", "uid": "0000-ghost"}
    await client.create(R.ENDPOINTSLICES, slice_body("of-web", owner_ref(web)))
    await client.create(R.ENDPOINTSLICES, slice_body("of-ghost", ghost))
    async with running(GarbageCollector(client, resources=[R.ENDPOINTSLICES])) as _:
        await until(lambda: gone(client, R.ENDPOINTSLICES, "of-ghost"))
        await asyncio.sleep(0.3)
        assert await exists(client, R.ENDPOINTSLICES, "of-web")


async def test_an_owner_replaced_while_the_api_server_was_down(etcd, apiserver_process):
    """After a restart the collector relists; an owner deleted and created again under its
    name meanwhile comes back as a change of that name, with another uid. What depended
    on the old one must still go."""
    from tests.conftest import ApiServer, api_settings

    async with ApiClient(apiserver_process.config, timeout=5) as client:
        old = await make_service(client, "web")
        await client.create(R.ENDPOINTSLICES, slice_body("of-old", owner_ref(old)))
        async with running(GarbageCollector(client)):
            await asyncio.sleep(0.3)
            assert await exists(client, R.ENDPOINTSLICES, "of-old")
            apiserver_process.kill()
            other = await ApiServer(api_settings(etcd)).start()
            try:
                async with ApiClient(other.config) as c:
                    await c.delete(R.SERVICES, "web", "default")
                    new = await make_service(c, "web")
                    await c.create(R.ENDPOINTSLICES, slice_body("of-new", owner_ref(new)))
            finally:
                await other.stop()
            apiserver_process.start()
            await until(lambda: gone(client, R.ENDPOINTSLICES, "of-old"))
            await asyncio.sleep(0.3)
            assert await exists(client, R.ENDPOINTSLICES, "of-new")


async def test_a_namespaced_owner_is_only_looked_for_in_its_dependents_namespace(client):
    """Owner references do not cross namespaces: a reference to an object of another
    namespace names an owner that is absent (kube's collector looks it up by name in the
    dependent's namespace)."""
    web = await make_service(client, "web")
    await client.create(R.NAMESPACES, {"metadata": {"name": "other"}})
    await client.create(R.ENDPOINTSLICES, slice_body("of-web", owner_ref(web)))
    await client.create(R.ENDPOINTSLICES, {**slice_body("elsewhere", owner_ref(web)), "metadata": {
        "name": "elsewhere", "namespace": "other", "ownerReferences": [owner_ref(web)]}},
        "other")
    async with running(GarbageCollector(client)):
        async def collected() -> bool:
            return not await exists(client, R.ENDPOINTSLICES, "elsewhere", "other")
        await until(collected)
        assert await exists(client, R.ENDPOINTSLICES, "of-web")


async def test_a_cluster_scoped_object_with_a_namespaced_owner_is_kept(client):
    """Such a reference cannot be resolved; kube's collector leaves the object alone
    rather than delete it on a guess."""
    ref = {"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "0000-web",
           "controller": True, "blockOwnerDeletion": True}
    await client.create(R.NODES, {"metadata": {"name": "n1", "ownerReferences": [ref]}})
    async with running(GarbageCollector(client)):
        await asyncio.sleep(1.0)
        assert await client.get(R.NODES, "n1")
