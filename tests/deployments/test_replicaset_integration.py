"""The ReplicaSet controller alone, in-process against the real API server: adoption,
terminating pods counted as gone, release on relabel, deletion order, status."""
from __future__ import annotations

from kubecore.api import resources as R
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from services.deployments.app import DeploymentsManager
from tests.support.controllers import running, set_pod_status, until


def replicaset(replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "front", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "front"}},
                     "template": {"metadata": {"labels": {"app": "front"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def pods_by_name(client: ApiClient) -> dict[str, Obj]:
    items, _ = await client.list(R.PODS, "default")
    return {p["metadata"]["name"]: p for p in items}


def controlled_by(pod: Obj, rs: Obj) -> bool:
    return any(r.get("controller") and r["uid"] == rs["metadata"]["uid"]
               for r in pod["metadata"].get("ownerReferences") or [])


async def test_replicaset_adopts_counts_terminating_as_gone_and_releases(apiserver):
    async with ApiClient(apiserver.config) as client:
        # An orphan that matches, bound to a node so that its deletion is graceful.
        await client.create(R.PODS, {"metadata": {"name": "orphan", "namespace": "default",
                                                  "labels": {"app": "front"}},
                                     "spec": {"nodeName": "n1",
                                              "containers": [{"name": "c", "image": "nginx"}]}})
        manager = DeploymentsManager(client)
        async with running(manager):
            rs = await client.create(R.REPLICASETS, replicaset(3))

            async def three_owned():
                pods = await pods_by_name(client)
                owned = {n: p for n, p in pods.items() if controlled_by(p, rs)}
                return owned if len(owned) == 3 else None
            owned = await until(three_owned)
            assert "orphan" in owned  # adopted, so only two were created
            created = sorted(n for n in owned if n != "orphan")
            assert all(n.startswith("front-") and len(n) == len("front-") + 5 for n in created)
            ref = owned[created[0]]["metadata"]["ownerReferences"][0]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "front",
                           "uid": rs["metadata"]["uid"], "controller": True,
                           "blockOwnerDeletion": True}

            # A pod being deleted is gone for the count: a replacement comes at once.
            await client.delete(R.PODS, "orphan", "default")
            assert (await client.get(R.PODS, "orphan", "default"))["metadata"]["deletionTimestamp"]

            async def replaced():
                pods = await pods_by_name(client)
                live = [n for n, p in pods.items()
                        if controlled_by(p, rs) and not p["metadata"].get("deletionTimestamp")]
                return live if len(live) == 3 and "orphan" not in live else None
            live = await until(replaced)

            # Relabelled: released (no longer ours), and replaced.
            await client.patch(R.PODS, live[0], {"metadata": {"labels": {"app": "other"}}}, "default")

            async def released():
                pods = await pods_by_name(client)
                mine = [n for n, p in pods.items()
                        if controlled_by(p, rs) and not p["metadata"].get("deletionTimestamp")]
                return (not controlled_by(pods[live[0]], rs)) and len(mine) == 3 and live[0] not in mine
            await until(released)
            assert not (await client.get(R.PODS, live[0], "default"))["metadata"].get("ownerReferences")

            # Status: mark two ready.
            async def mine_now():
                pods = await pods_by_name(client)
                return sorted(n for n, p in pods.items()
                              if controlled_by(p, rs) and not p["metadata"].get("deletionTimestamp"))
            names = await mine_now()
            await set_pod_status(client, names[0], ip="10.0.0.1", ready=True)
            await set_pod_status(client, names[1], ip="10.0.0.2", ready=True)

            async def status_counts():
                got = (await client.get(R.REPLICASETS, "front", "default")).get("status") or {}
                want = {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                        "fullyLabeledReplicas": 3, "observedGeneration": 1}
                return got if {k: got.get(k) for k in want} == want else None
            await until(status_counts)

            # Scale down to 2: the one pod that is not ready goes first.
            await client.patch(R.REPLICASETS, "front", {"spec": {"replicas": 2}}, "default",
                               subresource="scale")

            async def scaled_down():
                return await mine_now() == names[:2]
            await until(scaled_down)

            async def observed():
                got = (await client.get(R.REPLICASETS, "front", "default")).get("status") or {}
                return got.get("observedGeneration") == 2 and got.get("replicas") == 2
            await until(observed)
        assert manager.replicasets.expectations.satisfied("default/front")


async def test_no_adoption_into_an_owner_the_cache_does_not_know_is_going(apiserver):
    """The cache still shows the ReplicaSet as it was, but it is being deleted with Orphan:
    a stray pod that matches is not adopted (the collector would delete it with its new
    owner); the owner is read afresh before adopting, as apimachinery's canAdopt does."""
    from kubecore.api.selectors import selector_from_label_selector
    from services.deployments import controller_refs as own

    async with ApiClient(apiserver.config) as client:
        cached = await client.create(R.REPLICASETS, replicaset(0), "default")
        await client.delete(R.REPLICASETS, "front", "default", propagation_policy="Orphan")
        stray = await client.create(R.PODS, {"metadata": {"name": "stray", "namespace": "default",
                                                          "labels": {"app": "front"}},
                                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
        claim = own.claim(cached, [stray], selector_from_label_selector(cached["spec"]["selector"]))
        assert [p["metadata"]["name"] for p in claim.adopt] == ["stray"]  # by the stale copy
        owned = await DeploymentsManager(client).replicasets._adopt_and_release(
            "default/front", cached, claim)
        assert owned == []
        pod = (await pods_by_name(client))["stray"]
        assert not pod["metadata"].get("ownerReferences")


def test_an_adoption_patch_is_conditional_on_the_version_it_was_made_from():
    from services.deployments import controller_refs as own

    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "front", "uid": "u1"}}
    pod = {"metadata": {"name": "p", "uid": "p1", "resourceVersion": "41",
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n",
                                             "uid": "n1"}]}}
    patch = own.adoption_patch(owner, pod)["metadata"]
    assert patch["resourceVersion"] == "41" and patch["uid"] == "p1"
    assert [r["uid"] for r in patch["ownerReferences"]] == ["n1", "u1"]
