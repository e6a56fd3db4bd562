"""`kubectl exec` for real: the kubectl binary, the official Python client and a raw aiohttp
WebSocket against the API server, relaying to a node agent that runs the commands in pods.

One node network, agent and set of pods serve the whole module (they take seconds to make);
each test runs its own commands against them.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import pty
import secrets
import shutil
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from kubecore.api import remotecommand as rc
from kubecore.api.resources import NODES, PODS
from kubecore.client.rest import ApiClient
from tests.conftest import ApiServer, api_settings, wipe_etcd
from tests.nodeagent.agent_harness import AgentProcess, NodeNetwork
from tests.nodeagent.conftest import needs_netns

KUBECTL = shutil.which("kubectl")
pytestmark = [needs_netns, pytest.mark.netns, pytest.mark.asyncio(loop_scope="module")]
EXEC = "/api/v1/namespaces/default/pods/{pod}/exec"


@dataclass
class ExecCluster:
    server: ApiServer
    network: NodeNetwork
    agent: AgentProcess
    node: str
    workdir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def config(self):
        return self.server.config

    @property
    def kubeconfig(self) -> str:
        return str(self.server.kubeconfig(self.workdir / "admin.kubeconfig"))

    def session(self, **kw) -> aiohttp.ClientSession:
        return self.server.session(**kw)


def _sleeper(name: str, mark: str) -> dict:
    return {"name": name, "image": "busybox", "command": ["sleep", "3600"], "env": [{"name": "MARK", "value": mark}]}


async def _eventually(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.2)


def _running(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(etcd_server, tmp_path_factory):
    wipe_etcd(etcd_server.endpoint)
    workdir = tmp_path_factory.mktemp("exec")
    server = await ApiServer(api_settings(etcd_server)).start()
    tag = secrets.token_hex(2)
    network = NodeNetwork(tag, [f"t{tag}e1"])
    agent = None
    try:
        network.up()
        node = network.nodes[0]
        server.state.nodes.dial_netns = f"/run/netns/{network.net}"
        kubeconfig = server.kubeconfig(workdir / f"{node}.kubeconfig", f"system:node:{node}", ("system:nodes",))
        agent = AgentProcess(kubeconfig=kubeconfig, node=node, node_ip=network.ips[node], netns=network.netns(node),
                             state_dir=workdir / node).start()
        async with ApiClient(server.config) as client:
            async def node_ready():
                assert agent.alive(), agent.log()
                try:
                    n = await client.get(NODES, node)
                except Exception:
                    return None
                conds = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
                return conds.get("Ready") == "True" and n["spec"].get("podCIDR")
            await _eventually(node_ready, 30, f"node {node} Ready")
            await client.create(PODS, {"metadata": {"name": "web"}, "spec": {
                "nodeName": node, "containers": [_sleeper("main", "web")], "terminationGracePeriodSeconds": 1}})
            await client.create(PODS, {"metadata": {"name": "two"}, "spec": {
                "nodeName": node, "containers": [_sleeper("main", "main"), _sleeper("side", "side")],
                "terminationGracePeriodSeconds": 1}})
            await client.create(PODS, {"metadata": {"name": "done"}, "spec": {
                "nodeName": node, "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}})
            await client.create(PODS, {"metadata": {"name": "unbound"}, "spec": {
                "containers": [{"name": "c", "image": "busybox"}]}})
            for name in ("web", "two"):
                async def up(name=name):
                    return _running(await client.get(PODS, name, "default"))
                await _eventually(up, 30, f"pod {name} running")

            async def done():
                return (await client.get(PODS, "done", "default")).get("status", {}).get("phase") == "Succeeded"
            await _eventually(done, 30, "pod done Succeeded")
        yield ExecCluster(server, network, agent, node, workdir)
    finally:
        if agent is not None:
            agent.kill()
        network.down()
        await server.stop()


# --------------------------------------------------------------------------- kubectl


async def kubectl(cluster: ExecCluster, *args: str, stdin: bytes | None = None,
                  timeout: float = 30) -> tuple[int, str, str]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    argv = [KUBECTL, "--kubeconfig", cluster.kubeconfig, "--cache-dir", str(cluster.workdir / "kube-cache"), *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cluster.workdir)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"kubectl {' '.join(args)} hung for {timeout}s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def test_kubectl_exec_stdout_stderr_and_exit_code(cluster):
    code, out, err = await kubectl(cluster, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (code, out) == (3, "out\n"), (code, out, err)
    assert err == "err\ncommand terminated with exit code 3\n"
    code, out, err = await kubectl(cluster, "exec", "web", "--", "hostname")
    assert (code, out, err) == (0, "web\n", "")
    code, out, err = await kubectl(cluster, "exec", "web", "--", "head", "-c", "3000000", "/dev/zero")
    assert code == 0 and len(out) == 3_000_000 and err == ""
    # killed by a signal: 128 + N, as container runtimes report it
    code, out, err = await kubectl(cluster, "exec", "web", "--", "sh", "-c", "kill -9 $$")
    assert code == 137 and "command terminated with exit code 137" in err


async def test_kubectl_exec_stdin(cluster):
    code, out, err = await kubectl(cluster, "exec", "-i", "web", "--", "cat", stdin=b"hello\nworld\n")
    assert (code, out, err) == (0, "hello\nworld\n", "")
    # more than one message's worth, and the exit code of what read it
    blob = os.urandom(600_000)
    code, out, err = await kubectl(cluster, "exec", "-i", "web", "--", "sh", "-c", "sha256sum; exit 4", stdin=blob)
    assert code == 4 and out.split()[0] == hashlib.sha256(blob).hexdigest(), (code, out, err)
    # stdin that ends at once
    code, out, err = await kubectl(cluster, "exec", "-i", "web", "--", "wc", "-c", stdin=b"")
    assert (code, out.strip()) == (0, "0"), (code, out, err)


async def test_kubectl_exec_container_selection(cluster):
    code, out, err = await kubectl(cluster, "exec", "two", "-c", "side", "--", "sh", "-c", "echo $MARK")
    assert (code, out) == (0, "side\n"), err
    code, out, err = await kubectl(cluster, "exec", "two", "--", "sh", "-c", "echo $MARK")
    assert (code, out) == (0, "main\n") and 'Defaulted container "main" out of: main, side' in err


async def test_kubectl_exec_errors(cluster):
    code, out, err = await kubectl(cluster, "exec", "nope", "--", "true")
    assert code == 1 and err.strip() == 'Error from server (NotFound): pods "nope" not found'
    code, out, err = await kubectl(cluster, "exec", "web", "-c", "nope", "--", "true")
    assert code == 1 and err.strip() == "Error from server (BadRequest): container nope is not valid for pod web"
    code, out, err = await kubectl(cluster, "exec", "web", "--", "no-such-command", "x")
    assert code == 127 and err == ('exec: "no-such-command": executable file not found in $PATH\n'
                                   "command terminated with exit code 127\n"), err
    code, out, err = await kubectl(cluster, "exec", "web", "--", "/tmp")
    assert code == 126 and err.startswith('exec: "/tmp": permission denied'), err
    code, out, err = await kubectl(cluster, "exec", "unbound", "--", "true")
    assert code == 1 and "does not have a host assigned" in err and "Error from server (ServiceUnavailable)" in err
    # kubectl refuses a finished pod itself; the server says so too (agent: container not running)
    code, out, err = await kubectl(cluster, "exec", "done", "--", "true")
    assert code == 1 and "cannot exec into a container in a completed pod" in err
    async with cluster.session() as http:
        status, _ = await _exec_ws(http, "done", ["true"], stdout=True)
    assert status["status"] == "Failure" and "cannot exec in a container that is not running" in status["message"]


async def test_kubectl_exec_tty(cluster):
    """-t with a terminal: the command runs on a pty (a login-like shell), sizes follow the client."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    argv = [KUBECTL, "--kubeconfig", cluster.kubeconfig, "--cache-dir", str(cluster.workdir / "kube-cache"),
            "exec", "-it", "web", "--", "sh"]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                start_new_session=True, cwd=cluster.workdir)
    os.close(slave)
    os.set_blocking(master, False)
    seen = bytearray()
    loop = asyncio.get_running_loop()

    async def read_until(needle: bytes, timeout: float = 15) -> None:
        deadline = loop.time() + timeout
        while needle not in seen:
            if loop.time() > deadline:
                raise AssertionError(f"{needle!r} not seen in {bytes(seen)!r}")
            try:
                seen.extend(os.read(master, 65536))
            except BlockingIOError:
                await asyncio.sleep(0.05)
            except OSError:
                await asyncio.sleep(0.05)

    try:
        os.write(master, b"echo sum-$((40+2)); tty; stty size\r")
        await read_until(b"sum-42")
        await read_until(b"33 101")
        assert b"/dev/pts/" in seen
        # ^C reaches the foreground job through the terminal, not the shell
        os.write(master, b"sleep 100\r")
        await asyncio.sleep(0.5)
        os.write(master, b"\x03")
        os.write(master, b"echo after-$((1+1))\r")
        await read_until(b"after-2", timeout=10)
        os.write(master, b"exit 7\r")
        code = await asyncio.wait_for(proc.wait(), 15)
        assert code == 7, bytes(seen)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)


async def test_kubectl_exec_tty_without_terminal(cluster):
    """-it without a terminal: kubectl says so and runs without one, as against any cluster."""
    code, out, err = await kubectl(cluster, "exec", "-it", "web", "--", "sh", "-c", "cat; echo plain",
                                   stdin=b"in\n")
    assert code == 0 and out == "in\nplain\n", (out, err)
    assert "Unable to use a TTY" in err


# --------------------------------------------------------------------------- the protocol


async def _exec_ws(http: aiohttp.ClientSession, pod: str, command: list[str], *, protocol: str = rc.V5,
                   stdin: bytes | None = None, close_stdin: bool = True, container: str | None = None,
                   **flags: bool) -> tuple[dict, dict[int, bytes]]:
    params = [("command", c) for c in command] + [(k, "true") for k, v in flags.items() if v]
    if container:
        params.append(("container", container))
    if stdin is not None:
        params.append(("stdin", "true"))
    chunks: dict[int, bytes] = {}
    async with http.ws_connect(EXEC.format(pod=pod), params=params, protocols=(protocol,)) as ws:
        assert ws.protocol == protocol
        if stdin is not None:
            if stdin:
                await ws.send_bytes(rc.frame(rc.STDIN, stdin))
            if close_stdin:
                await ws.send_bytes(bytes((rc.CLOSE, rc.STDIN)))
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            chunks[msg.data[0]] = chunks.get(msg.data[0], b"") + msg.data[1:]
        assert ws.close_code == 1000
    return json.loads(chunks.pop(rc.ERROR)), chunks


async def test_protocol_v4_and_v5(cluster):
    async with cluster.session() as http:
        for protocol in (rc.V4, rc.V5):
            status, out = await _exec_ws(http, "web", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                         protocol=protocol, stdout=True, stderr=True)
            assert out == {rc.STDOUT: b"out\n", rc.STDERR: b"err\n"}
            assert status == {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                              "message": "command terminated with non-zero exit code: 3",
                              "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
            status, out = await _exec_ws(http, "two", ["hostname"], protocol=protocol, stdout=True, container="side")
            assert status == {"metadata": {}, "status": "Success"} and out == {rc.STDOUT: b"two\n"}
        # v5: stdin ends with the close signal; binary data goes through untouched
        data = bytes(range(256)) * 300
        status, out = await _exec_ws(http, "web", ["cat"], stdin=data, stdout=True, stderr=True)
        assert status["status"] == "Success" and out == {rc.STDOUT: data}
        # a tty: one output channel, terminal line discipline, sizes from channel 4
        params = [("command", "sh"), ("command", "-c"), ("command", "read x; stty size; exit 6"),
                  ("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "true")]
        chunks: dict[int, bytes] = {}
        async with http.ws_connect(EXEC.format(pod="web"), params=params, protocols=(rc.V5,)) as ws:
            await ws.send_bytes(rc.frame(rc.RESIZE, b'{"Width":90,"Height":20}'))
            await ws.send_bytes(rc.frame(rc.STDIN, b"go\r"))
            async for msg in ws:
                chunks[msg.data[0]] = chunks.get(msg.data[0], b"") + msg.data[1:]
        assert set(chunks) == {rc.STDOUT, rc.ERROR} and chunks[rc.STDOUT] == b"go\r\n20 90\r\n", chunks
        assert json.loads(chunks[rc.ERROR])["details"]["causes"] == [{"reason": "ExitCode", "message": "6"}]
        # only stderr asked for: stdout goes nowhere
        status, out = await _exec_ws(http, "web", ["sh", "-c", "echo a; echo b >&2"], stderr=True)
        assert status["status"] == "Success" and out == {rc.STDERR: b"b\n"}


async def test_plain_json_exec_is_still_there(cluster):
    """Requests without an upgrade (minikubectl) get one JSON answer."""
    async with cluster.session() as http:
        async with http.post(EXEC.format(pod="web"), params=[("command", "sh"), ("command", "-c"),
                                                             ("command", "echo $MARK; exit 2")]) as r:
            assert await r.json() == {"exitCode": 2, "stdout": "web\n", "stderr": ""}
        async with http.post(EXEC.format(pod="web"), params=[("command", "no-such-command")]) as r:
            body = await r.json()
            assert body["exitCode"] == 127 and "executable file not found" in body["stderr"]


def _pids_running(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def test_a_client_that_goes_away_ends_the_command(cluster):
    marker = f"sleep 3{secrets.randbelow(10 ** 6):06d}"
    async with cluster.session() as http:
        ws = await http.ws_connect(EXEC.format(pod="web"), params=[("command", "sh"), ("command", "-c"),
                                                                   ("command", marker), ("stdout", "true")],
                                   protocols=(rc.V5,))
        msg = await ws.receive()  # the empty message that says the stream is up
        assert msg.type == aiohttp.WSMsgType.BINARY and msg.data == bytes((rc.STDOUT,))

        async def started():
            return _pids_running(marker)
        await _eventually(started, 10, "the command running")
        await ws.close()

    async def gone():
        return not _pids_running(marker)
    await _eventually(gone, 10, "the command ended")


async def test_the_command_ends_with_its_container(cluster):
    """An exec does not outlive the container it runs in (as in a container's PID namespace)."""
    stop = cluster.workdir / f"stop-{secrets.token_hex(3)}"
    async with ApiClient(cluster.config) as client:
        await client.create(PODS, {"metadata": {"name": "short"}, "spec": {
            "nodeName": cluster.node, "restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox",
                 "command": ["sh", "-c", f"until [ -e {stop} ]; do sleep 0.1; done"]}]}})

        async def up():
            return _running(await client.get(PODS, "short", "default"))
        await _eventually(up, 30, "pod short running")
        async with cluster.session() as http:
            async with http.ws_connect(EXEC.format(pod="short"), params=[("command", "sleep"), ("command", "300"),
                                                                         ("stdout", "true")],
                                       protocols=(rc.V5,)) as ws:
                assert (await ws.receive()).data == bytes((rc.STDOUT,))
                stop.touch()
                msg = await asyncio.wait_for(ws.receive(), 15)
                assert msg.data[0] == rc.ERROR
                assert json.loads(msg.data[1:])["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


async def test_official_python_client(cluster):
    """kubernetes.stream (websocket-client, v5 then v4) against the same endpoint."""
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    def run() -> tuple[str, str, int | None, str]:
        with k8s.ApiClient(cluster.server.pki.python_client(cluster.url)) as api:
            core = k8s.CoreV1Api(api)
            resp = stream(core.connect_get_namespaced_pod_exec, "web", "default",
                          command=["sh", "-c", "echo out; echo err >&2; exit 5"], stderr=True, stdin=False,
                          stdout=True, tty=False, _preload_content=False)
            resp.run_forever(timeout=20)
            out, err, code = resp.read_stdout(), resp.read_stderr(), resp.returncode
            resp.close()
            text = stream(core.connect_get_namespaced_pod_exec, "two", "default", container="side",
                          command=["sh", "-c", "echo $MARK"], stderr=True, stdin=False, stdout=True, tty=False)
        return out, err, code, text

    out, err, code, text = await asyncio.to_thread(run)
    assert (out, err, code, text) == ("out\n", "err\n", 5, "side\n")
