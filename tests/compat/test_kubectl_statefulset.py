"""Unmodified kubectl on a StatefulSet that the StatefulSet controller runs (as a process, as
its own identity); the test plays the node agents. `get` (columns, short name, category
all), `rollout status`, `set image`, `rollout history` (read from the ControllerRevisions),
`rollout undo`, `scale`, and an update of a fixed field refused in kube's words."""
from __future__ import annotations

import asyncio

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.client.rest import ApiClient
from tests.compat.conftest import Kubectl, rows
from tests.statefulset.kubelet import FakeKubelet
from tests.support.controllers import ControllerProcess

MANIFEST = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1
"""


async def test_kubectl_rollout_history_undo_and_scale_a_statefulset(kubectl: Kubectl, apiserver_process):
    async def run(*args: str, check: bool = True) -> str:
        proc = await asyncio.to_thread(kubectl, *args, check=check)
        return str(proc.stdout + proc.stderr)

    user, groups = CONTROL_PLANE_IDENTITIES["statefulset"]
    proc = ControllerProcess("services.statefulset", apiserver_process, user=user, groups=groups).start()
    try:
        await proc.wait_ready()
        async with ApiClient(apiserver_process.config, timeout=10) as client:
            async with FakeKubelet(client).run():
                await run("apply", "-f", str(kubectl.write("sts.yaml", MANIFEST)))
                out = await run("rollout", "status", "sts/web", "--timeout=60s")
                assert "partitioned roll out complete: 2 new pods have been updated..." in out
                table = rows(await run("get", "sts"))
                assert table[0] == ["NAME", "READY", "AGE"] and table[1][:2] == ["web", "2/2"]
                wide = rows(await run("get", "statefulsets", "-o", "wide"))
                assert wide[0] == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"] and wide[1][3:] == ["c", "nginx:1"]
                assert "statefulset.apps/web" in await run("get", "all")

                await run("set", "image", "sts/web", "c=nginx:2")
                await run("rollout", "status", "sts/web", "--timeout=60s")
                history = rows(await run("rollout", "history", "sts/web"))
                assert history[1:] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]
                assert "Image:\tnginx:2" in await run("rollout", "history", "sts/web", "--revision=2")

                out = await run("rollout", "undo", "sts/web", "--to-revision=2")
                assert "skipped rollback (current template already matches revision 2)" in out
                assert "statefulset.apps/web rolled back" in await run("rollout", "undo", "sts/web")
                await run("rollout", "status", "sts/web", "--timeout=60s")
                images = await run("get", "pods", "-l", "app=web", "-o",
                                   "jsonpath={.items[*].spec.containers[0].image}")
                assert images.split() == ["nginx:1", "nginx:1"]
                history = rows(await run("rollout", "history", "sts/web"))
                assert [r[0] for r in history[2:]] == ["2", "3"]

                assert "statefulset.apps/web scaled" in await run("scale", "sts/web", "--replicas=3")
                await run("rollout", "status", "sts/web", "--timeout=60s")
                assert rows(await run("get", "sts", "web"))[1][1] == "3/3"

                out = await run("patch", "sts", "web", "-p", '{"spec":{"serviceName":"other"}}', check=False)
                assert ('The StatefulSet "web" is invalid: spec: Forbidden: updates to statefulset spec '
                        "for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden") in out
    finally:
        proc.kill()
