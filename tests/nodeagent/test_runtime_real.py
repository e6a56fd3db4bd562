"""The host-process runtime for real: network namespaces, ptp + host-local + portmap, processes in pods."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.nodeagent import procfs
from services.nodeagent.cni import CniError, PortMapping
from services.nodeagent.podlog import parse_record
from services.nodeagent.runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    ContainerCreateError,
    Runtime,
    SandboxCreateError,
)
from tests.nodeagent.conftest import POD_CIDR, leases, needs_netns

ROOT = Path(__file__).resolve().parents[2]

pytestmark = needs_netns


def _ip_json(*argv: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-j", *argv], check=True, capture_output=True, text=True).stdout)


def _eth0_addrs(netns: str) -> list[str]:
    [link] = _ip_json("-n", netns, "addr", "show", "eth0")
    return [a["local"] for a in link["addr_info"] if a["family"] == "inet"]


async def _log(runtime: Runtime, info, stream: str | None = None, *, wait: bool = True) -> str:
    """The container's log as text (the records' texts, of one stream or both), once the agent
    has pumped all of it when `wait`."""
    io = runtime.container_io(info.id)
    if wait and io is not None:
        await asyncio.wait_for(io.done.wait(), 10)
    records = [parse_record(line) for line in Path(info.log_path).read_bytes().splitlines()]
    return "".join(r.text.decode() + ("" if r.partial else "\n") for r in records
                   if r is not None and stream in (None, r.stream))


async def _wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def _exec_until_ok(rt: Runtime, container_id: str, cmd: list[str], timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        code, out, err = await rt.exec_sync(container_id, cmd, timeout=5)
        if code == 0:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{cmd} kept failing: {code} {err!r}")
        await asyncio.sleep(0.1)


async def _sleeper(rt: Runtime, sandbox_id: str, name: str = "sleeper") -> str:
    c = await rt.create_container(sandbox_id, ContainerConfig(name=name, image="busybox", command=["sleep", "3600"]))
    await rt.start_container(c.id)
    return c.id


async def test_two_sandboxes_get_addresses_routes_and_pod_files(runtime: Runtime, node_netns: str):
    a = await runtime.run_pod_sandbox("uid-aaaa", "shop", "web-a")
    b = await runtime.run_pod_sandbox("uid-bbbb", "shop", "web-b")
    assert a.state == b.state == SANDBOX_READY
    assert a.ip != b.ip
    for sb in (a, b):
        assert ipaddress.ip_address(sb.ip) in ipaddress.ip_network(POD_CIDR)
        assert sb.netns_name.startswith(f"mc-{runtime.node_name}-")
        assert _eth0_addrs(sb.netns_name) == [sb.ip]
        [lo] = _ip_json("-n", sb.netns_name, "link", "show", "lo")
        assert "UP" in lo["flags"]
        pod_dir = Path(sb.pod_dir)
        assert (pod_dir / "hostname").read_text() == f"{sb.name}\n"
        assert (pod_dir / "resolv.conf").read_text() == (
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 10.96.0.10\noptions ndots:5\n")
        assert (pod_dir / "hosts").read_text().splitlines()[-1] == f"{sb.ip}\t{sb.name}"
    # The node namespace routes each pod IP to its host-side veth (ptp).
    node_routes = {r["dst"]: r.get("dev") for r in _ip_json("-n", node_netns, "route")}
    assert a.ip in node_routes and b.ip in node_routes and node_routes[a.ip] != node_routes[b.ip]
    assert {s.id for s in runtime.list_pod_sandboxes()} == {a.id, b.id}
    await runtime.check_pod_network(a.id)
    # CHECK notices drift: the pod's address removed behind the runtime's back.
    subprocess.run(["ip", "-n", a.netns_name, "addr", "flush", "dev", "eth0"], check=True)
    with pytest.raises(CniError):
        await runtime.check_pod_network(a.id)


def agnhost(name: str, *args: str) -> ContainerConfig:
    """The agnhost image's servers, as a host process runs them: the project's own modules."""
    return ContainerConfig(name=name, image="registry.k8s.io/e2e-test-images/agnhost:2.39",
                           command=[sys.executable, "-m", "services.nodeagent.workloads.agnhost"], args=list(args),
                           env={"PYTHONPATH": str(ROOT)})


async def test_a_server_in_one_pod_answers_another_with_its_hostname(runtime: Runtime):
    a = await runtime.run_pod_sandbox("uid-aaaa", "default", "nginx-a")
    b = await runtime.run_pod_sandbox("uid-bbbb", "default", "client-b")
    web = await runtime.create_container(a.id, agnhost("nginx", "serve-hostname", "--port", "80"))
    await runtime.start_container(web.id)
    client = await _sleeper(runtime, b.id, "client")

    body = await _exec_until_ok(runtime, client, ["curl", "-sS", "--max-time", "2", f"http://{a.ip}/"])
    assert body.decode() == "nginx-a"
    # Inside the container: its hostname, the pod's resolv.conf and hosts, its own IP on eth0.
    assert (await runtime.exec_sync(client, ["hostname"]))[1] == b"client-b\n"
    code, resolv, _ = await runtime.exec_sync(client, ["cat", "/etc/resolv.conf"])
    assert code == 0 and resolv.startswith(b"search default.svc.cluster.local ")
    assert f"{b.ip}\tclient-b".encode() in (await runtime.exec_sync(client, ["cat", "/etc/hosts"]))[1]
    # ... while the agent's own view of the host is unchanged.
    assert Path("/etc/resolv.conf").read_text() != resolv.decode()
    assert os.uname().nodename != "client-b"
    [status] = [c for c in runtime.list_containers(a.id)]
    assert status.state == CONTAINER_RUNNING and procfs.is_alive(status.pid, status.pid_start_ticks)
    assert "GET / " in await _log(runtime, status, wait=False)


async def test_agnhost_netexec_sees_the_callers_pod_ip(runtime: Runtime):
    a = await runtime.run_pod_sandbox("uid-aaaa", "default", "netexec")
    b = await runtime.run_pod_sandbox("uid-bbbb", "default", "client")
    server = await runtime.create_container(a.id, agnhost("agnhost", "netexec", "--http-port=8080", "--udp-port=-1"))
    await runtime.start_container(server.id)
    client = await _sleeper(runtime, b.id)
    out = await _exec_until_ok(runtime, client, ["curl", "-sS", "--max-time", "2", f"http://{a.ip}:8080/clientip"])
    host, _, port = out.decode().rpartition(":")
    assert host == b.ip and int(port) > 0  # no NAT between pods
    assert (await _exec_until_ok(runtime, client, ["curl", "-sS", f"http://{a.ip}:8080/hostname"])) == b"netexec"


async def test_host_port_through_portmap(runtime: Runtime, node_netns: str):
    a = await runtime.run_pod_sandbox("uid-aaaa", "default", "published",
                                      port_mappings=[PortMapping(host_port=30080, container_port=80)])
    b = await runtime.run_pod_sandbox("uid-bbbb", "default", "client")
    web = await runtime.create_container(a.id, agnhost("nginx", "serve-hostname", "--port", "80"))
    await runtime.start_container(web.id)
    client = await _sleeper(runtime, b.id)
    gateway = a.cni_result["ips"][0]["gateway"]  # the node's address on the pod side (ptp)
    body = await _exec_until_ok(runtime, client, ["curl", "-sS", "--max-time", "2", f"http://{gateway}:30080/"])
    assert body == b"published"
    rules = subprocess.run(["ip", "netns", "exec", node_netns, "iptables-save", "-t", "nat"], check=True,
                           capture_output=True, text=True).stdout
    assert "--dport 30080" in rules
    await runtime.stop_pod_sandbox(a.id)
    rules = subprocess.run(["ip", "netns", "exec", node_netns, "iptables-save", "-t", "nat"], check=True,
                           capture_output=True, text=True).stdout
    assert "30080" not in rules


async def test_stop_and_remove_release_everything_and_are_idempotent(runtime: Runtime, node_netns: str, ipam_dir):
    a = await runtime.run_pod_sandbox("uid-aaaa", "default", "a")
    b = await runtime.run_pod_sandbox("uid-bbbb", "default", "b")
    sleeper = await _sleeper(runtime, a.id)
    pid = runtime.container_status(sleeper).pid
    assert leases(ipam_dir) == sorted([a.ip, b.ip])

    await runtime.stop_pod_sandbox(a.id)
    assert not os.path.exists(a.netns_path)
    assert leases(ipam_dir) == [b.ip]
    node_routes = {r["dst"] for r in _ip_json("-n", node_netns, "route")}
    assert a.ip not in node_routes and b.ip in node_routes
    assert len([link for link in _ip_json("-n", node_netns, "link") if link["ifname"] != "lo"]) == 1
    assert not procfs.is_alive(pid, None)
    assert runtime.pod_sandbox_status(a.id).state == SANDBOX_NOTREADY
    assert runtime.container_status(sleeper).state == CONTAINER_EXITED

    await runtime.stop_pod_sandbox(a.id)  # again: nothing left to do, and no error
    await runtime.remove_pod_sandbox(a.id)
    await runtime.remove_pod_sandbox(a.id)
    assert not Path(a.pod_dir).exists()
    assert [s.id for s in runtime.list_pod_sandboxes()] == [b.id]


async def test_restarted_agent_adopts_sandboxes_and_cleans_up_orphans(node_name, tmp_path, cni, ipam_dir, node_netns):
    state = tmp_path / "state"
    first = Runtime(node_name=node_name, state_dir=state, cni=cni)
    second: Runtime | None = None
    try:
        keep = await first.run_pod_sandbox("uid-keep", "default", "keep")
        gone = await first.run_pod_sandbox("uid-gone", "default", "gone")
        keep_c = await _sleeper(first, keep.id)
        gone_c = await _sleeper(first, gone.id)
        keep_pid = first.container_status(keep_c).pid
        gone_pid = first.container_status(gone_c).pid
        first.close()  # the agent "crashes": nothing is stopped
        second = Runtime(node_name=node_name, state_dir=state, cni=cni)  # and starts again

        # A stray namespace of this node no record names (crash between `ip netns add` and the record).
        stray = f"mc-{node_name}-deadbeef-000000"
        subprocess.run(["ip", "netns", "add", stray], check=True)

        adopted = {s.pod_uid: s for s in second.list_pod_sandboxes()}
        assert adopted["uid-keep"].state == SANDBOX_READY and adopted["uid-keep"].ip == keep.ip
        running = {c.id: c for c in second.list_containers()}
        assert running[keep_c].state == CONTAINER_RUNNING and running[keep_c].pid == keep_pid

        removed = await second.cleanup_orphans({"uid-keep"})
        assert removed == [gone.id]
        assert not os.path.exists(gone.netns_path) and not os.path.exists(f"/run/netns/{stray}")
        assert leases(ipam_dir) == [keep.ip]
        await _wait_for(lambda: not procfs.is_alive(gone_pid, None))
        assert procfs.is_alive(keep_pid, None)
        assert await second.cleanup_orphans({"uid-keep"}) == []  # idempotent

        # The adopted container is stopped by the new agent like its own.
        stopped = await second.stop_container(keep_c, timeout=5)
        assert stopped.state == CONTAINER_EXITED and stopped.exit_code == 143
        assert not procfs.is_alive(keep_pid, None)
    finally:
        second = second or Runtime(node_name=node_name, state_dir=state, cni=cni)
        try:
            await second.cleanup_orphans(set())
        finally:
            first.close()
            second.close()
    assert leases(ipam_dir) == []


async def test_stop_is_sigterm_then_sigkill_after_the_grace_period(runtime: Runtime):
    sb = await runtime.run_pod_sandbox("uid-aaaa", "default", "stopper")
    polite = await runtime.create_container(sb.id, ContainerConfig(name="polite", image="busybox",
                                                                   command=["sleep", "3600"]))
    stubborn = await runtime.create_container(sb.id, ContainerConfig(
        name="stubborn", image="busybox",
        command=["sh", "-c", "trap 'echo got TERM' TERM; while :; do sleep 0.1; done"]))
    await runtime.start_container(polite.id)
    await runtime.start_container(stubborn.id)
    await asyncio.sleep(0.2)  # let the shell install its trap

    started = time.monotonic()
    result = await runtime.stop_container(polite.id, timeout=5)
    assert time.monotonic() - started < 2
    assert (result.state, result.exit_code, result.reason) == (CONTAINER_EXITED, 143, "Error")

    started = time.monotonic()
    result = await runtime.stop_container(stubborn.id, timeout=0.7)
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 5
    assert (result.state, result.exit_code) == (CONTAINER_EXITED, 137)
    assert "got TERM" in await _log(runtime, result)
    # Its `sleep` children were in its process group and are gone too.
    assert procfs.group_members(result.pid, not_before_ticks=result.pid_start_ticks) == []
    assert (await runtime.stop_container(stubborn.id, timeout=1)).exit_code == 137  # idempotent


async def test_exit_codes_and_logs(runtime: Runtime):
    sb = await runtime.run_pod_sandbox("uid-aaaa", "default", "jobs")
    ok = await runtime.create_container(sb.id, ContainerConfig(
        name="ok", image="alpine", command=["sh", "-c", 'echo "to stdout $GREETING"; echo to stderr >&2; pwd'],
        env={"GREETING": "hello"}, working_dir="/tmp"))
    bad = await runtime.create_container(sb.id, ContainerConfig(name="bad", image="busybox",
                                                                command=["sh", "-c", "exit 3"]))
    await runtime.start_container(ok.id)
    await runtime.start_container(bad.id)
    ok_done = await _wait_for(lambda: (s := runtime.container_status(ok.id)).state == CONTAINER_EXITED and s)
    bad_done = await _wait_for(lambda: (s := runtime.container_status(bad.id)).state == CONTAINER_EXITED and s)
    assert (ok_done.exit_code, ok_done.reason) == (0, "Completed")
    assert (bad_done.exit_code, bad_done.reason) == (3, "Error")
    # kept as kubelet's CRI log: one record per line, stdout and stderr apart
    assert await _log(runtime, ok_done, "stdout") == "to stdout hello\n/tmp\n"
    assert await _log(runtime, ok_done, "stderr") == "to stderr\n"
    assert all(re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z std(out|err) F .*", line)
               for line in Path(ok_done.log_path).read_bytes().splitlines())
    assert ok_done.log_path.endswith("/logs/ok/0.log")


async def test_python_image_and_create_errors(runtime: Runtime):
    sb = await runtime.run_pod_sandbox("uid-aaaa", "default", "py")
    c = await runtime.create_container(sb.id, ContainerConfig(
        name="py", image="python:3.11", command=["python", "-c", "import socket; print(socket.gethostname())"]))
    await runtime.start_container(c.id)
    done = await _wait_for(lambda: (s := runtime.container_status(c.id)).state == CONTAINER_EXITED and s)
    assert done.exit_code == 0 and await _log(runtime, done) == "py\n"

    with pytest.raises(ContainerCreateError, match='container "x" gives none'):  # host processes run no image
        await runtime.create_container(sb.id, ContainerConfig(name="x", image="example.com/unknown:1"))
    with pytest.raises(ContainerCreateError, match="executable file not found"):
        await runtime.create_container(sb.id, ContainerConfig(name="x", image="busybox", command=["no-such-binary"]))


async def test_pod_strings_exec_cannot_take_fail_the_container_not_the_agent(runtime: Runtime):
    """A stored pod with an env name or argument exec cannot take (written before validation
    refused it): CreateContainerError with the reason, and the sandbox keeps serving."""
    sb = await runtime.run_pod_sandbox("uid-aaaa", "default", "env")
    bad = [ContainerConfig(name="eq", image="busybox", command=["true"], env={"A=B": "1"}),
           ContainerConfig(name="nul", image="busybox", command=["true"], env={"A\0": "1"}),
           ContainerConfig(name="arg", image="busybox", command=["echo", "a\0b"])]
    for config in bad:
        with pytest.raises(ContainerCreateError, match="must not"):
            await runtime.create_container(sb.id, config)
    ok = await runtime.create_container(sb.id, ContainerConfig(
        name="ok", image="busybox", command=["sh", "-c", "echo $MY_VAR"], env={"MY_VAR": "fine"}))
    await runtime.start_container(ok.id)
    done = await _wait_for(lambda: (s := runtime.container_status(ok.id)).state == CONTAINER_EXITED and s)
    assert done.exit_code == 0 and await _log(runtime, done) == "fine\n"


async def test_hostnames_that_are_not_dns_labels_fail_the_sandbox_before_anything_is_made(
        runtime: Runtime, node_netns: str):
    before = set(_netns_names())
    with pytest.raises(SandboxCreateError, match='pod Hostname "web\\\\n10.0.0.1 evil" is not a valid DNS label'):
        await runtime.run_pod_sandbox("uid-aaaa", "default", "p", hostname="web\n10.0.0.1 evil")
    with pytest.raises(SandboxCreateError, match='pod Subdomain "Sub" is not a valid DNS label'):
        await runtime.run_pod_sandbox("uid-aaaa", "default", "p", subdomain="Sub")
    assert set(_netns_names()) == before and runtime.list_pod_sandboxes() == []


def _netns_names() -> list[str]:
    return [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], check=True, capture_output=True,
                                                        text=True).stdout.splitlines() if line.strip()]


async def test_output_reaches_the_log_across_an_agent_restart(runtime: Runtime, node_name, tmp_path, cni):
    """The container's stdout is a FIFO it holds open for reading too: while no agent reads it,
    it neither dies of SIGPIPE nor loses output, and the next agent goes on pumping it."""
    sb = await runtime.run_pod_sandbox("uid-cccc", "default", "talker")
    c = await runtime.create_container(sb.id, ContainerConfig(
        name="talk", image="busybox",
        command=["sh", "-c", "i=0; while true; do echo n$i; i=$((i+1)); sleep 0.05; done"]))
    await runtime.start_container(c.id)
    await _wait_for(lambda: "n3\n" in Path(c.log_path).read_text())
    runtime.close()  # the agent goes away; the container keeps running
    await asyncio.sleep(0.5)
    assert runtime.container_status(c.id).state == CONTAINER_RUNNING
    written = Path(c.log_path).read_text().count("\n")
    await asyncio.sleep(0.3)
    assert Path(c.log_path).read_text().count("\n") == written  # nobody pumps now
    again = Runtime(node_name=node_name, state_dir=tmp_path / "state", cni=cni)
    try:
        [info] = [i for i in again.list_containers(sb.id) if i.id == c.id]  # adopts its stdio
        assert info.state == CONTAINER_RUNNING
        await _wait_for(lambda: Path(c.log_path).read_text().count("\n") > written + 5)
        numbers = [int(line.split(" F n")[1]) for line in Path(c.log_path).read_text().splitlines()]
        assert numbers == list(range(len(numbers)))  # nothing lost, nothing twice
    finally:
        await again.stop_container(c.id, timeout=0)
        again.close()
