"""Containers for real: images from the node's store, run by runc in the pod's sandbox.

What a user of a real cluster relies on: a container sees its image's files and not the node's,
its own processes only, the pod's hostname, network, IPC and /dev/shm shared with the pod's
other containers; exit codes and stop signals as containerd reports them; a restarted agent
adopts what runs; removing the pod leaves no mount, cgroup, runtime state or process behind.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster import hoststate, nodeimages
from services.nodeagent import procfs
from services.nodeagent.cni import CniExecutor
from services.nodeagent.oci.cgroups import CGROUP_PARENT, cgroup_dirs
from services.nodeagent.oci.image import ImageNotPresentError, ImageStore
from services.nodeagent.oci.registry import Puller
from services.nodeagent.oci.runc import become_subreaper
from services.nodeagent.ociruntime import OciRuntime
from services.nodeagent.runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    ContainerConfig,
    ContainerStartError,
    Mount,
    RuntimeServiceError,
)
from tests.nodeagent.conftest import needs_netns

pytestmark = [needs_netns, pytest.mark.root]

BUSYBOX = "docker.io/library/busybox:latest"


@pytest.fixture
async def oci(node_name: str, tmp_path: Path, cni: CniExecutor, image_store: ImageStore) -> AsyncIterator[OciRuntime]:
    become_subreaper()
    rt = OciRuntime(images=image_store, node_name=node_name, state_dir=tmp_path / "state", cni=cni)
    try:
        yield rt
    finally:
        try:
            await rt.cleanup_orphans(set())
        finally:
            rt.close()
            hoststate.remove_cgroups([node_name])


async def _start(rt: OciRuntime, sandbox_id: str, name: str, command: list[str], image: str = BUSYBOX, **kw) -> str:
    info = await rt.create_container(sandbox_id, ContainerConfig(name=name, image=image, command=command, **kw))
    await rt.start_container(info.id)
    return info.id


async def _sh(rt: OciRuntime, cid: str, script: str) -> str:
    code, out, err = await rt.exec_sync(cid, ["sh", "-c", script], timeout=10)
    assert code == 0, (code, out, err)
    return out.decode()


async def _until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return value


async def test_a_container_sees_its_image_not_the_node(oci: OciRuntime, tmp_path: Path):
    marker = Path("/tmp") / f"node-only-{secrets.token_hex(4)}"
    marker.write_text("on the node")
    try:
        sb = await oci.run_pod_sandbox("uid-files", "default", "files")
        cid = await _start(oci, sb.id, "main", ["sleep", "3600"])
        code, _, _ = await oci.exec_sync(cid, ["cat", str(marker)])
        assert code != 0
        assert "busybox" in await _sh(oci, cid, "ls -l /bin/sh")
        rows = [line.split() for line in (await _sh(oci, cid, "ps -o pid,comm")).splitlines()[1:] if line.strip()]
        assert rows[0] == ["1", "sleep"]
        assert {comm for _, comm in rows} <= {"sleep", "sh", "ps"}  # the exec's shell and ps, nothing of the node
        assert (await _sh(oci, cid, "hostname")).strip() == "files"
        assert "nameserver 10.96.0.10" in await _sh(oci, cid, "cat /etc/resolv.conf")
        assert sb.ip in await _sh(oci, cid, "ip -4 addr show eth0")
    finally:
        marker.unlink()


async def test_containers_of_a_pod_share_network_ipc_and_shm_not_pids(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-share", "default", "share")
    server = await _start(oci, sb.id, "server", ["sh", "-c", "echo hello-from-server > /dev/shm/note; "
                                                "while true; do echo pong | nc -l -p 7070; done"])
    client = await _start(oci, sb.id, "client", ["sleep", "3600"])
    assert (await _sh(oci, client, "cat /dev/shm/note")).strip() == "hello-from-server"
    for _ in range(50):
        code, out, _ = await oci.exec_sync(client, ["sh", "-c", "nc 127.0.0.1 7070 </dev/null"], timeout=5)
        if out.strip() == b"pong":
            break
        await asyncio.sleep(0.1)
    assert out.strip() == b"pong"
    ns = {}
    for cid in (server, client):
        ns[cid] = (await _sh(oci, cid, "for n in ipc uts net pid; do readlink /proc/1/ns/$n; done")).split()
    assert ns[server][:3] == ns[client][:3]
    assert ns[server][3] != ns[client][3]


async def test_exit_codes_and_stop(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-exit", "default", "exit")
    three = await _start(oci, sb.id, "three", ["sh", "-c", "exit 3"])
    info = await _until(lambda: (i := oci.container_status(three)).state == CONTAINER_EXITED and i)
    assert (info.exit_code, info.reason) == (3, "Error")
    # sh as PID 1 has no SIGTERM handler, so the kernel ignores the signal: SIGKILL after the grace
    stubborn = await _start(oci, sb.id, "stubborn", ["sh", "-c", "sleep 3600"])
    started = time.monotonic()
    stopped = await oci.stop_container(stubborn, timeout=1)
    assert stopped.exit_code == 137 and 0.9 < time.monotonic() - started < 5
    polite = await _start(oci, sb.id, "polite",
                          ["sh", "-c", "trap 'exit 0' TERM; echo trapping; while true; do sleep 0.1; done"])
    # stopped only once its handler is in place (before that, PID 1 ignores SIGTERM)
    log_path = oci.container_status(polite).log_path
    await _until(lambda: "trapping" in Path(log_path).read_text())
    stopped = await oci.stop_container(polite, timeout=10)
    assert (stopped.exit_code, stopped.reason) == (0, "Completed")


async def test_missing_executable_and_image(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-missing", "default", "missing")
    info = await oci.create_container(sb.id, ContainerConfig(name="c", image=BUSYBOX, command=["no-such-thing"]))
    with pytest.raises(ContainerStartError, match='exec: "no-such-thing": executable file not found in \\$PATH'):
        await oci.start_container(info.id)
    with pytest.raises(ImageNotPresentError):
        await oci.create_container(sb.id, ContainerConfig(name="d", image="docker.io/library/absent:1"))
    cid = await _start(oci, sb.id, "sleeper", ["sleep", "3600"])
    code, _, err = await oci.exec_sync(cid, ["nope"])
    assert (code, err) == (127, b'exec: "nope": executable file not found in $PATH\n')


async def test_volumes_are_bind_mounted(oci: OciRuntime, tmp_path: Path):
    data = tmp_path / "vol"
    data.mkdir()
    (data / "index.html").write_text("from the volume")
    sb = await oci.run_pod_sandbox("uid-vol", "default", "vol")
    cid = await _start(oci, sb.id, "c", ["sleep", "3600"],
                       mounts=(Mount("/usr/share/www", host_path=str(data), read_only=True),))
    assert await _sh(oci, cid, "cat /usr/share/www/index.html") == "from the volume"
    code, _, _ = await oci.exec_sync(cid, ["sh", "-c", "echo x > /usr/share/www/new"])
    assert code != 0
    assert not (data / "new").exists()


async def test_a_restarted_agent_adopts_running_containers(oci: OciRuntime, node_name: str, tmp_path: Path,
                                                           cni: CniExecutor, image_store: ImageStore):
    sb = await oci.run_pod_sandbox("uid-adopt", "default", "adopt")
    cid = await _start(oci, sb.id, "c", ["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
    pid = oci.container_status(cid).pid
    oci.close()  # the agent goes away; its containers keep running
    again = OciRuntime(images=image_store, node_name=node_name, state_dir=tmp_path / "state", cni=cni)
    try:
        [info] = [c for c in again.list_containers() if c.id == cid]
        assert info.state == CONTAINER_RUNNING and info.pid == pid
        assert "tick" not in await _sh(again, cid, "echo adopted")
        stopped = await again.stop_container(cid, timeout=0)
        assert stopped.state == CONTAINER_EXITED and not procfs.is_alive(pid, None)
    finally:
        await again.cleanup_orphans(set())
        again.close()


async def test_removing_the_pod_leaves_nothing(oci: OciRuntime, node_name: str, tmp_path: Path):
    sb = await oci.run_pod_sandbox("uid-gone", "default", "gone")
    cid = await _start(oci, sb.id, "c", ["sleep", "3600"])
    pid = oci.container_status(cid).pid
    await oci.remove_pod_sandbox(sb.id)
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path / "state") not in mountinfo
    assert not procfs.is_alive(pid, None)
    assert not any(d.exists() for d in cgroup_dirs(f"/{CGROUP_PARENT}/{node_name}/poduid-gone"))
    runc_list = subprocess.run(["runc", "--root", str(tmp_path / "state/runc"), "list", "--format", "json"],
                               capture_output=True, text=True, check=True).stdout
    assert json.loads(runc_list or "null") in (None, [])
    assert not Path(sb.pod_dir).exists()


async def test_a_tty_container_gets_a_terminal_of_its_own(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-tty", "default", "tty")
    cid = await _start(oci, sb.id, "c", ["sh", "-c", "tty; echo term=$TERM; read line; echo got $line; sleep 3600"],
                       tty=True, stdin=True)
    io = oci.container_io(cid)
    assert io is not None
    output = io.attach()
    await io.write_stdin(b"typed\n")
    seen = b""
    while b"got typed" not in seen:
        chunk = await asyncio.wait_for(output.get(), 10)
        assert chunk is not None, seen
        seen += chunk[1]
    assert b"/dev/pts/0" in seen and b"term=xterm" in seen  # the container's own devpts, as runc makes it


async def test_real_nginx_answers_as_nginx(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-nginx", "default", "web")
    web = await oci.create_container(sb.id, ContainerConfig(name="nginx", image="nginx"))
    await oci.start_container(web.id)
    client = await oci.create_container(sb.id, ContainerConfig(name="client", image="nicolaka/netshoot",
                                                               command=["sleep", "3600"]))
    await oci.start_container(client.id)
    for _ in range(100):
        code, out, err = await oci.exec_sync(client.id, ["curl", "-sSi", "-m", "2", "http://localhost/"])
        if code == 0:
            break
        await asyncio.sleep(0.1)
    assert code == 0, err
    head, _, body = out.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK") and "\r\nServer: nginx/" in head
    assert "<title>Welcome to nginx!</title>" in body
    # its workers run as the image's nginx user; the access log goes to the container's stdout
    assert "nginx" in await _sh(oci, web.id, "ps -o user,args | grep 'worker process' | grep -v grep")
    await _until(lambda: '"GET / HTTP/1.1" 200' in Path(web.log_path).read_text())
    stopped = await oci.stop_container(web.id, timeout=10)  # SIGQUIT, the image's StopSignal: a graceful stop
    assert (stopped.exit_code, stopped.reason) == (0, "Completed")


async def test_python_and_agnhost_images(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-py", "default", "py")
    py = await oci.create_container(sb.id, ContainerConfig(
        name="py", image="python:3.11", command=["python3", "-c", "import json, http.server, ssl; print('py-ok')"]))
    await oci.start_container(py.id)
    await _until(lambda: oci.container_status(py.id).state == CONTAINER_EXITED)
    assert oci.container_status(py.id).exit_code == 0
    assert "py-ok" in Path(py.log_path).read_text()
    agn = await oci.create_container(sb.id, ContainerConfig(
        name="agnhost", image="registry.k8s.io/e2e-test-images/agnhost:2.39", args=["netexec", "--http-port=8080"]))
    await oci.start_container(agn.id)
    for _ in range(100):
        code, out, _ = await oci.exec_sync(agn.id, ["wget", "-qO-", "http://127.0.0.1:8080/hostname"])
        if code == 0:
            break
        await asyncio.sleep(0.1)
    assert out.decode().strip() == "py"


def _pod(uid: str, name: str, container: dict, pod_sc: dict | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"securityContext": pod_sc or {}, "containers": [container]}}


async def _with_spec(rt: OciRuntime, sandbox_id: str, pod: dict, container: dict, image: str = BUSYBOX) -> str:
    info = await rt.create_container(sandbox_id, ContainerConfig(
        name=container["name"], image=image, command=container.get("command"), pod=pod, spec=container))
    await rt.start_container(info.id)
    return info.id


async def test_security_context_user_capabilities_and_read_only_root(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-sec", "default", "sec")
    c = {"name": "c", "command": ["sleep", "3600"],
         "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "allowPrivilegeEscalation": False,
                             "readOnlyRootFilesystem": True,
                             "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
    cid = await _with_spec(oci, sb.id, _pod("uid-sec", "sec", c, {"supplementalGroups": [4000]}), c)
    assert (await _sh(oci, cid, "id -u; id -g; id -G")).split() == ["1000", "3000", "3000", "4000"]
    status = await _sh(oci, cid, "cat /proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert int(fields["CapEff"].strip(), 16) == 0  # a non-root user: no effective capabilities
    assert int(fields["CapBnd"].strip(), 16) == 1 << 10  # CAP_NET_BIND_SERVICE alone is bounded
    assert fields["NoNewPrivs"].strip() == "1"
    code, _, err = await oci.exec_sync(cid, ["touch", "/new-file"])
    assert code != 0 and b"Read-only file system" in err
    assert "nobody" in await _sh(oci, cid, "cat /etc/passwd")  # the image's users, not the node's


async def test_run_as_non_root_refuses_a_root_image(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-nonroot", "default", "nonroot")
    c = {"name": "c", "command": ["sleep", "1"], "securityContext": {"runAsNonRoot": True}}
    with pytest.raises(RuntimeServiceError) as info:
        await _with_spec(oci, sb.id, _pod("uid-nonroot", "nonroot", c), c)
    assert info.value.reason == "CreateContainerConfigError"
    assert str(info.value) == ('container has runAsNonRoot and image will run as root (pod: '
                               '"nonroot_default(uid-nonroot)", container: c)')
    assert oci.list_containers(sb.id) == []  # nothing half-made is left


async def test_a_memory_hog_is_oom_killed(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-oom", "default", "oom")
    c = {"name": "hog", "command": ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 3600"],
         "resources": {"limits": {"memory": "32Mi", "cpu": "500m"}, "requests": {"memory": "32Mi", "cpu": "250m"}}}
    cid = await _with_spec(oci, sb.id, _pod("uid-oom", "oom", c), c)
    info = await _until(lambda: (i := oci.container_status(cid)).state == CONTAINER_EXITED and i, timeout=30)
    assert (info.exit_code, info.reason) == (137, "OOMKilled")
    config = json.loads((oci._bundle(info) / "config.json").read_text())
    assert config["linux"]["resources"]["memory"] == {"limit": 32 * 1024 * 1024}
    assert config["linux"]["resources"]["cpu"] == {"shares": 256, "quota": 50000, "period": 100000}
    assert config["process"]["oomScoreAdj"] > 2  # Burstable


async def test_stale_pod_cgroups_of_the_node_are_removed_at_start(oci: OciRuntime, node_name: str):
    """A node that went away without removing its pods (a stopped node container) left their
    (empty) cgroups; the next agent of that node removes them, and keeps its live pods'."""
    sb = await oci.run_pod_sandbox("uid-live", "default", "live")
    await _start(oci, sb.id, "c", ["sleep", "3600"])
    stale = [d / "minicluster" / node_name / "poduid-gone" for d in Path("/sys/fs/cgroup").iterdir()
             if (d / "minicluster" / node_name).is_dir()]
    assert stale
    for d in stale:
        d.mkdir()
    await oci.cleanup_orphans({"uid-live"})
    assert not any(d.exists() for d in stale)
    assert all(d.parent.joinpath("poduid-live").is_dir() for d in stale)


async def test_runtime_default_seccomp_blocks_what_containerd_blocks(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-seccomp", "default", "seccomp")
    admin = {"capabilities": {"add": ["SYS_ADMIN"]}}
    confined = {"name": "confined", "command": ["sleep", "3600"],
                "securityContext": {**admin, "seccompProfile": {"type": "RuntimeDefault"}}}
    plain = {"name": "plain", "command": ["sleep", "3600"], "securityContext": admin}
    pod = _pod("uid-seccomp", "seccomp", confined)
    a = await _with_spec(oci, sb.id, pod, confined)
    b = await _with_spec(oci, sb.id, pod, plain)
    assert (await _sh(oci, a, "grep Seccomp: /proc/self/status")).split()[1] == "2"  # filtered
    assert (await _sh(oci, b, "grep Seccomp: /proc/self/status")).split()[1] == "0"
    # swapon is in no group of the profile, whatever the capabilities: the filter refuses it
    # (EPERM) before the kernel looks at the file (which it would refuse otherwise: EINVAL)
    _, _, filtered = await oci.exec_sync(a, ["swapon", "/dev/null"])
    _, _, unfiltered = await oci.exec_sync(b, ["swapon", "/dev/null"])
    assert b"Operation not permitted" in filtered and b"Operation not permitted" not in unfiltered


async def test_share_process_namespace(oci: OciRuntime):
    sb = await oci.run_pod_sandbox("uid-sharepid", "default", "sharepid", share_process_namespace=True)
    a = await _start(oci, sb.id, "a", ["sh", "-c", "exec sleep 3601"])
    b = await _start(oci, sb.id, "b", ["sleep", "3602"])
    rows = [line.split(None, 1) for line in (await _sh(oci, b, "ps -o pid,args")).splitlines()[1:]]
    assert rows[0][0] == "1" and rows[0][1].endswith("sleep infinity")  # the pod's first process, as kube's pause
    assert {"sleep 3601", "sleep 3602"} <= {args for _, args in rows}
    assert oci.container_status(a).state == CONTAINER_RUNNING
    await oci.remove_pod_sandbox(sb.id)
    assert sb.pod_dir not in Path("/proc/self/mountinfo").read_text()


async def test_an_absent_image_is_pulled_by_the_image_service(oci: OciRuntime, tmp_path: Path):
    from cluster import registry
    from cluster.procs import free_port

    with registry.serving(tmp_path / "registry", f"127.0.0.1:{free_port()}") as url:
        host = url.removeprefix("http://")
        archive = nodeimages.build("busybox").archive
        await asyncio.to_thread(registry.push, f"oci-archive:{archive}:latest", url, "tools/bb:1")
        sb = await oci.run_pod_sandbox("uid-pull", "default", "pull")
        with pytest.raises(ImageNotPresentError):  # creating takes what is here; the image manager pulls
            await _start(oci, sb.id, "c", ["sleep", "3600"], image=f"{host}/tools/bb:1")
        oci.puller = Puller(oci.images)
        assert oci.image_status(f"{host}/tools/bb:1") is None
        pulled = await oci.pull_image(f"{host}/tools/bb:1")
        assert oci.image_status(f"{host}/tools/bb:1") == pulled
        cid = await _start(oci, sb.id, "c", ["sleep", "3600"], image=f"{host}/tools/bb:1")
        assert oci.container_status(cid).image_id.startswith(f"{host}/tools/bb@sha256:")
