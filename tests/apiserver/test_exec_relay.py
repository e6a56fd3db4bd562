"""pods/exec streamed end to end without containers: the real API server relays to the node
agent's real exec endpoint (`services.nodeagent.execstream`, `ExecProcess`), whose runtime is
a stand-in that runs the command on this host instead of inside a container's namespaces.
(The agent with real containers needs network namespaces: tests/nodeagent/test_exec_stream.py.)
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
import websocket
from aiohttp import web

from kubecore.api import remotecommand as rc
from services.nodeagent import execstream
from services.nodeagent.execproc import ExecProcess
from services.nodeagent.execstream import OUTPUT_DRAIN_SECONDS
from services.nodeagent.runtime import CONTAINER_RUNNING
from tests.conftest import SessionPki

EXEC = "/api/v1/namespaces/default/pods/web/exec"


@dataclass
class _State:
    state: str = CONTAINER_RUNNING


@dataclass
class _Info:
    id: str = "c1"


class HostRuntime:
    """The runtime calls execstream makes, answered on this host: the command runs as a plain
    child process, with the same ExecProcess the real runtime uses. `busy_after_start`: seconds
    the agent spends elsewhere once the command started (a loaded node), before it reads."""

    busy_after_start = 0.0

    def container_status(self, container_id: str) -> _State:
        return _State()

    async def exec_stream(self, container_id, cmd, *, stdin, stdout, stderr, tty) -> ExecProcess:
        proc = await ExecProcess.start(list(cmd), env=dict(os.environ), stdin=stdin, stdout=stdout,
                                       stderr=stderr, tty=tty, setsid=shutil.which("setsid") or "setsid")
        await asyncio.sleep(self.busy_after_start)
        return proc


class HostAgent:
    def __init__(self) -> None:
        self.runtime = HostRuntime()

    def find_container(self, namespace: str, pod: str, container: str) -> _Info:
        return _Info()


@pytest.fixture
def host_agent() -> HostAgent:
    return HostAgent()


@pytest.fixture
async def agent_port(host_agent):
    agent = host_agent

    async def exec_stream(request: web.Request) -> web.StreamResponse:
        return await execstream.serve(request, agent)

    app = web.Application()
    app.router.add_get("/exec/{namespace}/{pod}/{container}", exec_stream)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    # A small send buffer, as the little a slow link takes at a time: on loopback the kernel
    # would otherwise buffer megabytes of output between the agent and a slow client.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, ssl_context=SessionPki.get().agent_ssl_context()).start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()


@pytest.fixture
async def pod(http, apiserver, agent_port):
    """Pod web on node n1, whose agent is the host agent above."""
    apiserver.state.nodes.kubelet_port = agent_port  # what --kubelet-port sets
    code, node = await http.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert code == 201, node
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
    code, body = await http.put("/api/v1/nodes/n1/status", node)
    assert code == 200, body
    code, body = await http.post("/api/v1/namespaces/default/pods", {"metadata": {"name": "web"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}})
    assert code == 201, body
    return "web"


def params(*command: str, **flags: bool) -> list[tuple[str, str]]:
    return [*(("command", c) for c in command), *((k, "true") for k, v in flags.items() if v)]


async def collect(ws) -> dict[int, bytes]:
    chunks: dict[int, bytes] = {}
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        chunks[msg.data[0]] = chunks.get(msg.data[0], b"") + msg.data[1:]
    return chunks


async def test_output_exit_code_and_binary_stdin(http, pod):
    for protocol in rc.PROTOCOLS:
        async with http.session.ws_connect(EXEC, params=params("sh", "-c", "echo out; echo err >&2; exit 3",
                                                               stdout=True, stderr=True),
                                           protocols=(protocol,)) as ws:
            chunks = await collect(ws)
            assert ws.close_code == 1000
        assert chunks[rc.STDOUT] == b"out\n" and chunks[rc.STDERR] == b"err\n"
        assert json.loads(chunks[rc.ERROR])["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    data = bytes(range(256)) * 4000  # 1 MB, every byte value
    async with http.session.ws_connect(EXEC, params=params("cat", stdin=True, stdout=True),
                                       protocols=(rc.V5,)) as ws:
        for i in range(0, len(data), 32 * 1024):
            await ws.send_bytes(rc.frame(rc.STDIN, data[i:i + 32 * 1024]))
        await ws.send_bytes(bytes((rc.CLOSE, rc.STDIN)))
        chunks = await asyncio.wait_for(collect(ws), 20)
    assert chunks[rc.STDOUT] == data
    assert json.loads(chunks[rc.ERROR]) == rc.success()



async def exec_frames(http, *command: str) -> list[tuple[int, bytes]]:
    """The data messages of one exec with stdout and stderr, in the order they came."""
    async with http.session.ws_connect(EXEC, params=params(*command, stdout=True, stderr=True),
                                       protocols=(rc.V5,)) as ws:
        frames = [(msg.data[0], msg.data[1:]) async for msg in ws if len(msg.data) > 1]
        assert ws.close_code == 1000
    return frames


async def test_short_commands_deliver_all_their_stderr_and_then_their_exit_code(http, pod):
    """A command that writes and exits at once: every byte it wrote comes before the Status, every
    time (what `kubectl cp` of a missing path needs to show tar's error)."""
    for i in range(50):
        frames = await exec_frames(http, "sh", "-c", f"echo x{i} >&2; exit 3")
        assert [c for c, _ in frames] == [rc.STDERR, rc.ERROR], (i, frames)
        assert frames[0][1] == f"x{i}\n".encode(), (i, frames)
        assert json.loads(frames[-1][1])["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_output_goes_out_in_the_order_it_was_written_when_read_late(http, pod, host_agent):
    """tar of a missing path writes its error to stderr, then an empty archive to stdout, and
    exits. An agent busy elsewhere reads both only after the command ended: it sends them in the
    order they were read (the order written), as the kubelet does -- kubectl cp stops reading at
    the archive's end, so an error sent after the archive is an error it may never print."""
    host_agent.runtime.busy_after_start = 0.3
    for i in range(5):
        frames = await exec_frames(http, "sh", "-c", "echo 'tar: missing: Cannot stat' >&2; printf '\\0\\0'")
        assert frames == [(rc.STDERR, b"tar: missing: Cannot stat\n"), (rc.STDOUT, b"\0\0"),
                          (rc.ERROR, rc.status_frame(rc.success())[1:])], (i, frames)


async def test_text_stdin_from_the_official_python_client(http, apiserver, pod):
    """kubernetes.stream sends what write_stdin gets as a str in a TEXT message (bytes go as
    BINARY); kube-apiserver takes either as channel data."""
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    def run() -> tuple[str, str]:
        with k8s.ApiClient(apiserver.pki.python_client(apiserver.url)) as api:
            resp = stream(k8s.CoreV1Api(api).connect_get_namespaced_pod_exec, "web", "default",
                          command=["sh", "-c", "read a; read b; echo got $a $b"], stdin=True, stdout=True,
                          stderr=True, tty=False, _preload_content=False)
            resp.write_stdin("hello\n")
            resp.write_stdin(b"bytes\n")
            resp.run_forever(timeout=10)
            out, status = resp.read_stdout(), resp.read_channel(rc.ERROR)
            resp.close()
            return out, status

    out, status = await asyncio.to_thread(run)
    assert out == "got hello bytes\n"
    assert json.loads(status) == rc.success()


async def test_a_background_process_does_not_hold_the_exec_open(http, pod):
    """The command leaves a process that keeps its output open: the exec ends soon after the
    command, whenever the command ends (not when that process does)."""
    marker = f"sleep 20.{os.getpid()}"  # unique, to find the process left behind
    try:
        for script in (f"{marker} & echo hi", f"sleep 0.5; {marker} & echo hi"):
            started = time.monotonic()
            async with http.session.ws_connect(EXEC, params=params("sh", "-c", script, stdout=True),
                                               protocols=(rc.V5,)) as ws:
                chunks = await asyncio.wait_for(collect(ws), 30)
            assert chunks[rc.STDOUT] == b"hi\n" and json.loads(chunks[rc.ERROR]) == rc.success()
            assert time.monotonic() - started < OUTPUT_DRAIN_SECONDS + 3, script
    finally:
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        for pid in found:
            os.kill(int(pid), signal.SIGKILL)


async def test_output_reaches_a_slow_client_in_full(agent_port):
    """The command has ended and its pipe is read to the end, but the last of its output still
    waits for a client that stops reading a while (slow, or busy): all of it arrives, then the
    Status."""
    size, last = 900_000, 250_000
    # a pipe that holds all of it, so the command ends at once
    script = ("import fcntl, sys; fcntl.fcntl(1, 1031, 1 << 20); "  # F_SETPIPE_SZ
              f"sys.stdout.buffer.write(b'x' * {size})")
    url = f"wss://127.0.0.1:{agent_port}/exec/default/web/c?" + urlencode(
        params(sys.executable, "-c", script, stdout=True))

    def read_with_a_pause() -> tuple[int, bytes]:
        # a plain client that reads one message at a time: nothing buffered on its side
        ws = websocket.create_connection(url, subprotocols=[rc.V5], timeout=30,
                                         sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],
                                         sslopt={"ca_certs": SessionPki.get().ca_file})
        received, status, paused = 0, b"", False
        try:
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return received, status
                if data[:1] == bytes((rc.STDOUT,)):
                    received += len(data) - 1
                elif data[:1] == bytes((rc.ERROR,)):
                    status = data[1:]
                if received >= size - last and not paused:
                    # the agent has read the pipe to its end by now; the rest waits on the client
                    paused = True
                    time.sleep(OUTPUT_DRAIN_SECONDS + 1)
        finally:
            ws.close()

    received, status = await asyncio.to_thread(read_with_a_pause)
    assert json.loads(status) == rc.success()
    assert received == size
