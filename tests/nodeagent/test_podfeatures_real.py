"""A pod's features on the real runtime, in network namespaces with real processes: the executor
over `Runtime`, the node's volumes on disk (`PodVolumes`), ConfigMaps and Secrets from the
in-memory API client. An init container writes into an emptyDir (a tmpfs) what the app
container then reads; env and $(VAR) expansion reach the process; a configMap volume follows a
ConfigMap change while a subPath of it keeps what it had, as with kubelet; hostPath and secret
volumes show what they should; a postStart hook runs in the container; and when the pod goes,
the tmpfs is unmounted and the pod's directory removed."""
from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

from kubecore.api.resources import CONFIGMAPS, SECRETS
from services.nodeagent.executor import PodExecutor, observe
from services.nodeagent.lifecycle import HookRunner
from services.nodeagent.oci.mounts import mounts_under
from services.nodeagent.podsync import Backoff, plan_pod
from services.nodeagent.projected import TokenManager
from services.nodeagent.runtime import CONTAINER_EXITED, Runtime
from services.nodeagent.sources import ReferencedObjects
from services.nodeagent.volumes import PodVolumes
from tests.fakes.api import FakeApiClient
from tests.nodeagent.conftest import needs_netns
from tests.nodeagent.test_executor import Events, Probes, Writer
from tests.nodeagent.test_runtime_real import _exec_until_ok

pytestmark = needs_netns

KEY = "shop/web"


def the_pod(host_dir: Path) -> dict:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "uid-features", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "terminationGracePeriodSeconds": 2,
                     "volumes": [
                         {"name": "work", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                         {"name": "cfg", "configMap": {"name": "app-config"}},
                         {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                         {"name": "info", "downwardAPI": {"items": [
                             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                         {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}}],
                     "initContainers": [{"name": "prepare", "image": "busybox", "command": [
                         "sh", "-c", "echo prepared-by-init > /work/index.html"],
                         "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
                     "containers": [{
                         "name": "app", "image": "busybox",
                         "command": ["sh", "-c", "echo $(GREETING) > /work/greeting; exec sleep 3600"],
                         "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config",
                                                                                    "key": "mode"}}},
                                 {"name": "GREETING", "value": "hello-$(MODE)"},
                                 {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                         "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "CREDS_"}],
                         "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "touch /work/post-started"]}}},
                         "volumeMounts": [
                             {"name": "work", "mountPath": "/work"},
                             {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
                             {"name": "cfg", "mountPath": "/etc/app-mode", "subPath": "mode"},
                             {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                             {"name": "info", "mountPath": "/etc/podinfo"},
                             {"name": "host", "mountPath": "/mnt/host"}]}]}}


async def test_a_pod_with_init_containers_env_and_volumes(runtime: Runtime, tmp_path: Path):
    api = FakeApiClient()
    api.preload(CONFIGMAPS, {"metadata": {"name": "app-config", "namespace": "shop"},
                             "data": {"mode": "fast", "app.conf": "port=80"}})
    api.preload(SECRETS, {"metadata": {"name": "creds", "namespace": "shop"},
                          "data": {"user": base64.b64encode(b"admin").decode()}})
    objects = ReferencedObjects(api, ttl=0)
    volumes = PodVolumes(objects, tmp_path / "pods", tokens=TokenManager(api))
    writer, events = Writer(), Events()
    executor = PodExecutor(runtime=runtime, probes=Probes(), writer=writer, events=events,
                           requeue=lambda key, delay: None, bound_pod_uids=lambda: {"uid-features"},
                           node_ip="10.250.0.11", backoff=Backoff(base=0.2, cap=1), volumes=volumes,
                           objects=objects, hooks=HookRunner(runtime, host_netns=None))
    host_dir = tmp_path / "host-data"
    pod = the_pod(host_dir)
    writer.pod = pod

    async def sync() -> None:
        sandboxes, containers = observe(runtime, KEY)
        await executor.run(plan_pod(pod, sandboxes, containers, now=time.time(), backoff=Backoff(base=0.2, cap=1),
                                    key=KEY))

    async def app_id() -> str:
        deadline = time.monotonic() + 15
        while True:
            await sync()
            running = [c for c in observe(runtime, KEY)[1] if c.name == "app" and c.state != CONTAINER_EXITED]
            if running:
                return running[0].id
            logs = [Path(c.log_path).read_text() for c in observe(runtime, KEY)[1] if c.name == "app"]
            assert time.monotonic() < deadline, (logs, pod["status"], events.told)
            await asyncio.sleep(0.1)

    try:
        app = await app_id()
        assert [c.name for c in sorted(observe(runtime, KEY)[1], key=lambda c: c.created_at)] == ["prepare", "app"]
        assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
        assert host_dir.is_dir()  # DirectoryOrCreate
        out = await _exec_until_ok(runtime, app, ["sh", "-c", "cat /work/post-started /work/greeting"])
        assert out == b"hello-fast\n"
        checks = {
            "cat /work/index.html": b"prepared-by-init\n",
            "echo $MODE $GREETING $CREDS_user": b"fast hello-fast admin\n",
            "cat /etc/app/app.conf /etc/app-mode": b"port=80fast",
            "cat /etc/creds/user": b"admin",
            "stat -L -c %a /etc/creds/user": b"400\n",
            "cat /etc/podinfo/labels": b'app="web"',
            "stat -f -c %T /work": b"tmpfs\n",
        }
        for command, want in checks.items():
            code, got, err = await runtime.exec_sync(app, ["sh", "-c", command])
            assert (code, got) == (0, want), (command, err)
        code, ip, _ = await runtime.exec_sync(app, ["sh", "-c", "echo -n $POD_IP"])
        assert ip.decode() == observe(runtime, KEY)[0][0].ip
        code, _, err = await runtime.exec_sync(app, ["sh", "-c", "echo x > /etc/app/new"])
        assert code != 0 and b"Read-only" in err
        code, _, _ = await runtime.exec_sync(app, ["sh", "-c", "echo from-pod > /mnt/host/f"])
        assert code == 0 and (host_dir / "f").read_text() == "from-pod\n"

        # The ConfigMap changes: the next sync rewrites the volume in place, the subPath keeps the old file.
        api.edit(CONFIGMAPS, "app-config", "shop", lambda cm: cm["data"].update(mode="slow"))
        await sync()
        out = await _exec_until_ok(runtime, app, ["sh", "-c", "cat /etc/app/mode; echo; cat /etc/app-mode"])
        assert out == b"slow\nfast"
        pod_dir = tmp_path / "pods" / "uid-features"
        assert mounts_under(pod_dir)  # the Memory emptyDir's tmpfs
    finally:
        sandboxes, _ = observe(runtime, KEY)
        for s in sandboxes:
            await runtime.remove_pod_sandbox(s.id)
        volumes.keep_pods(set())
    assert not mounts_under(tmp_path / "pods") and not os.path.exists(tmp_path / "pods" / "uid-features")
