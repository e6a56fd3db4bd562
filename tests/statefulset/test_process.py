"""`python -m services.statefulset` as its own process, as the identity the cluster gives it
(so under RBAC, with only its bootstrap role), against an API server process and etcd: an
OrderedReady set comes up in order, scales down from the top one pod at a time, and rolls an
update out from the highest ordinal down."""
from __future__ import annotations

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.statefulset import identity as ident
from tests.statefulset.kubelet import FakeKubelet
from tests.statefulset.test_controller import pods_of, settled, statefulset
from tests.support.controllers import ControllerProcess, until


async def test_ordered_ready_lifecycle_as_its_own_process(apiserver_process, tmp_path):
    user, groups = CONTROL_PLANE_IDENTITIES["statefulset"]
    proc = ControllerProcess("services.statefulset", apiserver_process, "--log-json",
                             log_path=tmp_path / "statefulset.log", user=user, groups=groups).start()
    try:
        await proc.wait_ready()
        async with ApiClient(apiserver_process.config, timeout=10) as client:
            kubelet = FakeKubelet(client, delay=0.2)
            async with kubelet.run():
                await client.create(R.STATEFULSETS, statefulset(replicas=3))
                sts = await settled(client, replicas=3, readyReplicas=3, currentReplicas=3,
                                    updatedReplicas=3, availableReplicas=3)
                # each pod appeared only once every lower ordinal was Running and Ready
                assert [(n, sorted(r)) for n, r in kubelet.created] == [
                    ("web-0", []), ("web-1", ["web-0"]), ("web-2", ["web-0", "web-1"])]
                pods = await pods_of(client)
                rev = sts["status"]["currentRevision"]
                assert rev == sts["status"]["updateRevision"] and rev.startswith("web-")
                for name, pod in pods.items():
                    assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "nginx"
                    assert pod["metadata"]["labels"] == {
                        "app": "web", ident.POD_NAME_LABEL: name,
                        ident.POD_INDEX_LABEL: name.rsplit("-", 1)[1], ident.REVISION_LABEL: rev}

                await client.patch(R.STATEFULSETS, "web", {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": "nginx:2"}]}}}}, "default",
                    patch_type="strategic")
                sts = await settled(client, replicas=3, readyReplicas=3, updatedReplicas=3, currentReplicas=3)
                assert kubelet.deleted == ["web-2", "web-1", "web-0"]
                assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] != rev
                revs, _ = await client.list(R.CONTROLLERREVISIONS, "default")
                assert sorted(r["revision"] for r in revs) == [1, 2]

                kubelet.deleted.clear()
                await client.patch(R.STATEFULSETS, "web", {"spec": {"replicas": 1}}, "default",
                                   subresource="scale")
                await settled(client, replicas=1, readyReplicas=1)
                assert kubelet.deleted == ["web-2", "web-1"]
                assert sorted(await pods_of(client)) == ["web-0"]

                async def events() -> set[str] | None:
                    items, _ = await client.list(R.EVENTS, "default")
                    got = {e["message"] for e in items if e["involvedObject"].get("kind") == "StatefulSet"}
                    return got if "delete Pod web-1 in StatefulSet web successful" in got else None
                got = await until(events)
                assert "create Pod web-0 in StatefulSet web successful" in got
        code, text = await proc.get("/metrics")
        assert code == 200 and "statefulset_pods_created" in text
        assert await proc.terminate() == 0
    finally:
        proc.kill()
