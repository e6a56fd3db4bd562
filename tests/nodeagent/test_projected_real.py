"""A projected volume in a real pod: the files written on the node appear read-only at the
mount path inside the container, follow a rewrite, and nothing appears on the host outside the
pod's directory (the mount path's parents exist only in the container's mount namespace)."""
from __future__ import annotations

import os
from pathlib import Path

from services.nodeagent.projected import write_atomic
from services.nodeagent.runtime import ContainerConfig, Mount, Runtime
from tests.nodeagent.conftest import needs_netns
from tests.nodeagent.test_runtime_real import _exec_until_ok

pytestmark = needs_netns

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


async def test_the_volume_appears_at_the_mount_path_inside_the_container_only(runtime: Runtime, tmp_path: Path):
    assert not os.path.exists("/run/secrets"), "the host must not have it for this test to mean anything"
    volume = tmp_path / "pods" / "uid-proj" / "volumes" / "kubernetes.io~projected" / "kube-api-access-x"
    write_atomic(volume, {"token": (b"first-token", 0o644), "ca.crt": (b"CA", 0o644),
                          "namespace": (b"shop", 0o644)})
    sandbox = await runtime.run_pod_sandbox("uid-proj", "shop", "reader")
    c = await runtime.create_container(sandbox.id, ContainerConfig(
        name="reader", image="busybox", command=["sleep", "3600"],
        mounts=(Mount(MOUNT_PATH, str(volume), read_only=True, volume="kube-api-access-x"),)))
    await runtime.start_container(c.id)

    out = await _exec_until_ok(runtime, c.id, ["cat", f"{MOUNT_PATH}/token", f"{MOUNT_PATH}/namespace"])
    assert out == b"first-tokenshop"
    code, _, err = await runtime.exec_sync(c.id, ["touch", f"{MOUNT_PATH}/x"])
    assert code != 0 and b"Read-only" in err
    # The rest of /run is still there in the container (an overlay, not a bare tmpfs).
    code, _, _ = await runtime.exec_sync(c.id, ["test", "-d", "/run/netns"])
    assert code == 0
    # A refreshed token (the ..data swap) is what the container reads next.
    write_atomic(volume, {"token": (b"second-token", 0o644), "ca.crt": (b"CA", 0o644),
                          "namespace": (b"shop", 0o644)})
    out = await _exec_until_ok(runtime, c.id, ["cat", f"{MOUNT_PATH}/token"])
    assert out == b"second-token"
    assert not os.path.exists("/run/secrets")
    assert not any(Path(sandbox.pod_dir, "scratch").iterdir())  # the tmpfs was the container's own
    await runtime.remove_pod_sandbox(sandbox.id)
