"""pods/exec over WebSockets, the API server's part: what it answers before the upgrade (HTTP
Status errors, SPDY without a protocol both sides speak refused), and the Status it sends on channel 3 when the node
agent cannot be reached after the upgrade. (Commands that run: tests/nodeagent/test_exec_stream.py.)
"""
from __future__ import annotations

import base64
import json
import os

import aiohttp

from cluster.procs import free_port
from kubecore.api import remotecommand as rc

PODS = "/api/v1/namespaces/default/pods"
OK = [("command", "true"), ("stdout", "true")]


async def _objects(http, apiserver, *, agent_port: int) -> None:
    apiserver.state.nodes.kubelet_port = agent_port  # what --kubelet-port sets
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    code, body = await http.post("/api/v1/nodes", node)
    assert code == 201, body
    body["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
    code, body = await http.put("/api/v1/nodes/n1/status", body)
    assert code == 200, body
    for name, containers, node_name in (("web", ["c"], "n1"), ("two", ["a", "b"], "n1"), ("unbound", ["c"], None)):
        spec = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
        if node_name:
            spec["nodeName"] = node_name
        code, body = await http.post(PODS, {"metadata": {"name": name}, "spec": spec})
        assert code == 201, body


async def _handshake(session: aiohttp.ClientSession, pod: str, params, protocols: str = rc.V5,
                     method: str = "GET", upgrade: str = "websocket") -> tuple[int, dict]:
    headers = {"Connection": "Upgrade", "Upgrade": upgrade}
    if upgrade == "websocket":
        headers.update({"Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": protocols,
                        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    else:
        headers["X-Stream-Protocol-Version"] = "v4.channel.k8s.io"
    async with session.request(method, f"{PODS}/{pod}/exec", params=params, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_errors_before_the_upgrade(http, apiserver):
    await _objects(http, apiserver, agent_port=free_port())
    s = http.session
    code, body = await _handshake(s, "nope", OK)
    assert code == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'pods "nope" not found'
    code, body = await _handshake(s, "web", [*OK, ("container", "nope")])
    assert (code == 400 and body["reason"] == "BadRequest"
            and body["message"] == "container nope is not valid for pod web")
    code, body = await _handshake(s, "two", OK)
    assert code == 400 and body["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    code, body = await _handshake(s, "web", [("stdout", "true")])
    assert code == 400 and body["message"] == "you must specify at least one command for the container"
    code, body = await _handshake(s, "web", [("command", "true")])
    assert code == 400 and body["message"] == "you must specify at least one of stdin, stdout, stderr"
    code, body = await _handshake(s, "unbound", OK)
    assert code == 503 and "does not have a host assigned" in body["message"]
    code, body = await _handshake(s, "web", OK, protocols="v3.channel.k8s.io, channel.k8s.io")
    assert code == 400 and "v5.channel.k8s.io" in body["message"]
    # SPDY (kubectl up to 1.29, and newer ones' fallback): the same checks answer first, so it
    # prints the same error; then the remotecommand protocol must be one the agent speaks
    code, body = await _handshake(s, "nope", OK, method="POST", upgrade="SPDY/3.1")
    assert code == 404 and body["message"] == 'pods "nope" not found'
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v3.channel.k8s.io"}
    async with s.post(f"{PODS}/web/exec", params=OK, headers=headers) as r:
        code, body = r.status, await r.json(content_type=None)
    assert code == 403 and body["message"] == ("unable to upgrade: unable to negotiate protocol: client supports "
                                               "[v3.channel.k8s.io], server accepts [v4.channel.k8s.io]"), body
    # a protocol the agent speaks: the server dials the agent (here there is none) before it upgrades
    code, body = await _handshake(s, "web", OK, method="POST", upgrade="SPDY/3.1")
    assert code == 503 and "error dialing backend" in body["message"], body


async def test_an_unreachable_agent_is_a_status_on_the_error_channel(http, apiserver):
    await _objects(http, apiserver, agent_port=free_port())
    for protocol in rc.PROTOCOLS:
        chunks: dict[int, bytes] = {}
        async with http.session.ws_connect(f"{PODS}/web/exec", params=OK, protocols=(protocol,)) as ws:
            assert ws.protocol == protocol
            async for msg in ws:
                assert msg.type == aiohttp.WSMsgType.BINARY
                chunks[msg.data[0]] = chunks.get(msg.data[0], b"") + msg.data[1:]
            assert ws.close_code == 1000
        assert list(chunks) == [rc.ERROR]
        status = json.loads(chunks[rc.ERROR])
        assert status["status"] == "Failure" and status["reason"] == "ServiceUnavailable"
        assert status["message"].startswith("pods/exec is served by the pod's node agent: error dialing backend "
                                            "https://127.0.0.1:")
