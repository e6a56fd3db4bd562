"""pods/<name>/log and pods/<name>/exec, answered by the node agent of the pod's node.

The API server looks the pod up, then its node, and forwards to the agent at the node's
InternalIP (what kube-apiserver does with --kubelet-preferred-address-types=InternalIP) and
the server's own `--kubelet-port`. The URL is built from a parsed address, never from the
object's text, and the port a Node reports (`status.daemonEndpoints`) is not used: a Node
object must not be able to make the server dial anything but a node agent's port. A Node
without a usable InternalIP (none, not a plain IP, outside `--node-network`) is kube's
"no preferred addresses found" error, as a 503.

- log:  GET  /containerLogs/<ns>/<pod>/<container>?follow=&previous=&tailLines=&sinceSeconds=&sinceTime=
  &timestamps=&limitBytes= streamed as text/plain, the options checked first as kube's
  ValidatePodLogOptions (`kubecore.api.podlogs`)
- exec, streamed: a WebSocket upgrade (GET ?command=..&container=..&stdin=..&stdout=..&stderr=..
  &tty=.., subprotocol v5.channel.k8s.io or v4.channel.k8s.io: what kubectl 1.30+ and the
  official clients open) is checked here (pod, container, options: errors are HTTP Status
  answers before the upgrade), accepted, and relayed message by message to a WebSocket of the
  same subprotocol to GET /exec/<ns>/<pod>/<container> on the agent, which runs the command
  and ends with its Status (`kubecore.api.remotecommand`). What fails after the upgrade (the agent
  unreachable, the container not running) is a Failure Status on channel 3, which kubectl
  prints as `error: ...`. A SPDY upgrade (kubectl up to 1.29, and newer ones' fallback) is checked
  the same way, then relayed byte for byte to the agent's SPDY remotecommand (`v4.channel.k8s.io`).
- attach: the same WebSocket protocol without a command, relayed to GET /attach/<ns>/<pod>/<container>
- exec, plain: POST /exec/<ns>/<pod>/<container> {"command": [...]} -> JSON {"exitCode","stdout",
  "stderr"} for a request without an upgrade (minikubectl); the command comes as
  ?command=..&command=.. or in a JSON body {"command": [...], "container": ...}

- portforward: a SPDY/3.1 upgrade (kubectl up to 1.30) or a WebSocket tunneling it (subprotocol
  SPDY/3.1+portforward.k8s.io, kubectl 1.31+), relayed byte for byte to the agent's SPDY
  `/portForward/<ns>/<pod>` (`portforward`)

The agent's own errors are Status objects and are passed on with their code; an agent that
cannot be reached is a 503.

`dial_netns` (or the environment variable MINICLUSTER_NODE_NETNS) names a network namespace to
open the connections to node agents from, for an API server that runs outside the node network
(on a host whose own namespace has no route to the nodes).
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web

from kubecore.api import jsonwire, podlogs
from kubecore.api import remotecommand as rc
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, bad_request, method_not_allowed, not_found
from kubecore.api.nodenet import Address, NodeRanges, node_address_problem, parse_address
from kubecore.api.podlogs import PodLogOptions
from kubecore.api.portforward import STREAM_PROTOCOL_HEADER
from services.apiserver.endpoints import portforward
from services.apiserver.endpoints.requests import CLIENT_CHECK_SECONDS, Target, client_gone, read_body
from services.apiserver.storage.store import Storage

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 5.0
PROXY_TIMEOUT = 60.0  # a node proxy request as a whole (kube-apiserver's request timeout)

def _socket_in_netns(path: str, family: int, type_: int, proto: int) -> socket.socket:
    """A socket created by a short-lived thread that entered the namespace (setns is per thread)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({path})")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, type_, proto)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    sock: socket.socket = box["sock"]
    sock.setblocking(False)
    return sock


def _socket_factory(path: str | None) -> Callable[[tuple], socket.socket] | None:
    if not path:
        return None
    return lambda ai: _socket_in_netns(path, ai[0], ai[1], ai[2])


def node_address(node: dict[str, Any], ranges: NodeRanges | None) -> Address:
    """The first InternalIP of the node that is a plain IP address (in the node network, when
    the server knows it); else kube-apiserver's error for a node without one."""
    status = node.get("status")
    listed = status.get("addresses") if isinstance(status, dict) else None
    addresses = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
    for a in addresses:
        if a.get("type") == "InternalIP" and node_address_problem(a.get("address"), ranges) is None:
            ip = parse_address(a.get("address"))
            if ip is not None:
                return ip
    known = " ".join(f"{{{a.get('type')} {a.get('address')}}}" for a in addresses)
    raise ApiError(503, "ServiceUnavailable", f"no preferred addresses found; known addresses: [{known}]")


def agent_base_url(ip: Address, port: int) -> str:
    """The node agent's URL, made from an address object and the server's own port only."""
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"https://{host}:{int(port)}"


def choose_container(pod: dict[str, Any], asked: str | None) -> str:
    name = pod["metadata"]["name"]
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if asked:
        if asked not in names:
            raise bad_request(f"container {asked} is not valid for pod {name}")
        return asked
    if len(names) == 1:
        return names[0]
    raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")


def kubelet_client_context(cert_file: str, key_file: str, ca_file: str) -> ssl.SSLContext:
    """The API server's TLS towards node agents: its client certificate
    (`--kubelet-client-certificate`), and the agents' serving certificates verified against
    `--kubelet-certificate-authority` -- not verified without one, as kube-apiserver does."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    if not ca_file:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file and key_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class NodeProxy:
    def __init__(self, dial_netns: str | None = None, *, kubelet_port: int = 10250,
                 ranges: NodeRanges | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.dial_netns = dial_netns if dial_netns is not None else os.environ.get("MINICLUSTER_NODE_NETNS") or None
        self.kubelet_port = kubelet_port
        self.ranges = ranges
        self.ssl_context = ssl_context or kubelet_client_context("", "", "")

    def _session(self, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(force_close=True, socket_factory=_socket_factory(self.dial_netns),
                                         ssl=self.ssl_context)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def serve(self, storage: Storage, request: web.Request, t: Target) -> web.StreamResponse:
        if t.rt is R.NODES and t.sub == "proxy" and t.name is not None:
            return await self._node_proxy(storage, request, t.name, t.tail)
        if t.rt is not R.PODS or t.sub not in ("log", "exec", "attach", "portforward") or t.name is None:
            raise not_found(f"{t.rt.plural}/{t.sub}", t.name or "", t.rt.group)
        pod = await storage.get(R.PODS, t.namespace, t.name)
        what = f"{t.rt.plural}/{t.sub}"
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise ApiError(503, "ServiceUnavailable", f"{what} is served by the pod's node agent, and pod "
                           f"{t.name} does not have a host assigned")
        try:
            node = await storage.get(R.NODES, None, node_name)
        except ApiError as exc:
            if exc.code == 404:
                raise ApiError(503, "ServiceUnavailable",
                               f"{what} is served by the pod's node agent, and node {node_name} is gone") from None
            raise
        ip = node_address(node, self.ranges)
        base = agent_base_url(ip, self.kubelet_port)
        if t.sub == "portforward":
            return await self._port_forward(request, pod, ip, base, what)
        if t.sub == "log":
            if request.method != "GET":
                raise method_not_allowed()
            return await self._logs(request, pod, base, what)
        if request.method not in ("POST", "GET"):
            raise method_not_allowed()
        if t.sub == "attach":
            return await self._exec_stream(request, pod, ip, base, what, attach=True)
        if rc.is_websocket(request.headers) or rc.is_spdy(request.headers):
            return await self._exec_stream(request, pod, ip, base, what)
        return await self._exec(request, pod, base, what)

    async def _node_proxy(self, storage: Storage, request: web.Request, name: str, tail: str) -> web.StreamResponse:
        """nodes/<name>/proxy/<tail>: the request, as it came, to <tail> on the node's agent and its
        answer back (kube-apiserver's node proxy: `kubectl get --raw /api/v1/nodes/n1/proxy/metrics`).
        Plain requests only: an upgrade to a stream is refused."""
        if request.method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            raise method_not_allowed()
        if rc.is_websocket(request.headers) or rc.is_spdy(request.headers):
            raise bad_request("nodes/proxy relays plain requests only; use pods/exec, attach or portforward")
        node = await storage.get(R.NODES, None, name)
        base = agent_base_url(node_address(node, self.ranges), self.kubelet_port)
        url = f"{base}/{quote(tail, safe='/-._~')}"
        body = await request.read() if request.can_read_body else None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type")}
        timeout = aiohttp.ClientTimeout(total=PROXY_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._session(timeout) as session, session.request(
                    request.method, url, params=list(request.query.items()), data=body, headers=headers,
                    allow_redirects=False) as upstream:
                data = await upstream.read()
                answer = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type",)}
                return web.Response(status=upstream.status, body=data, headers=answer)
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            why = exc or type(exc).__name__
            raise ApiError(503, "ServiceUnavailable",
                           f"error trying to reach service: dial node {name} at {base}: {why}") from None

    async def _logs(self, request: web.Request, pod: dict[str, Any], base: str, what: str) -> web.StreamResponse:
        q = request.query
        PodLogOptions.from_query(q).check(pod["metadata"]["name"])
        container = choose_container(pod, q.get("container"))
        params = podlogs.agent_query(q)
        url = f"{base}/containerLogs/{_path(pod, container)}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._session(timeout) as session, session.get(url, params=params) as upstream:
                if upstream.status >= 400:
                    return await _relay_error(upstream)
                resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
                await resp.prepare(request)
                try:
                    while True:
                        # a quiet log: look at the client's connection while waiting, or a
                        # client that left holds the agent's log until the container ends
                        try:
                            chunk = await asyncio.wait_for(upstream.content.readany(),
                                                           CLIENT_CHECK_SECONDS)
                        except TimeoutError:
                            if client_gone(request):
                                return resp
                            continue
                        if not chunk:
                            break
                        await resp.write(chunk)
                except (ConnectionResetError, aiohttp.ClientPayloadError):
                    return resp
                await resp.write_eof()
                return resp
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            raise _unreachable(what, base, exc) from None

    async def _dial(self, ip: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TLS connection to the agent at `ip` (from `dial_netns` when set)."""
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        if self.dial_netns:
            sock = _socket_in_netns(self.dial_netns, family, socket.SOCK_STREAM, 0)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
        try:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (str(ip), self.kubelet_port)), CONNECT_TIMEOUT)
            hostname = str(ip) if self.ssl_context.check_hostname else None
            return await asyncio.wait_for(asyncio.open_connection(sock=sock, ssl=self.ssl_context,
                                                                  server_hostname=hostname), CONNECT_TIMEOUT)
        except BaseException:
            sock.close()
            raise

    async def _spdy_stream(self, request: web.Request, pod: dict[str, Any], container: str, opts: rc.ExecOptions,
                           ip: Address, base: str, what: str, *, attach: bool) -> web.StreamResponse:
        """exec or attach of a SPDY client (kubectl up to 1.29): the agent speaks SPDY
        remotecommand too; once it switched protocols the bytes are relayed as they are."""
        offered = ", ".join(request.headers.getall(STREAM_PROTOCOL_HEADER, []))
        if rc.V4 not in [p.strip() for p in offered.split(",")]:
            raise ApiError(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                           f"[{offered}], server accepts [{rc.V4}]")
        path = f"/{'attach' if attach else 'exec'}/{_path(pod, container)}?{urlencode(opts.query(attach=attach))}"
        try:
            up = await portforward.open_upstream(lambda: self._dial(ip), base.removeprefix("https://"), path,
                                                 rc.V4)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise _unreachable(what, base, exc) from None
        if up.status != 101:
            return await portforward.error_response(up)
        return await portforward.relay(request, up, "spdy")

    async def _port_forward(self, request: web.Request, pod: dict[str, Any], ip: Address, base: str,
                            what: str) -> web.StreamResponse:
        if request.method not in ("POST", "GET"):
            raise method_not_allowed()
        mode = portforward.requested_mode(request)
        if mode is None:
            raise bad_request("Upgrade request required")
        if mode == "websocket":
            portforward.check_websocket(request)
        path = f"/portForward/{_path(pod)}"
        try:
            up = await portforward.open_upstream(lambda: self._dial(ip), base.removeprefix("https://"), path)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise _unreachable(what, base, exc) from None
        if up.status != 101:
            return await portforward.error_response(up)
        return await portforward.relay(request, up, mode)

    async def _exec(self, request: web.Request, pod: dict[str, Any], base: str, what: str) -> web.Response:
        q = request.query
        command = q.getall("command", [])
        container = q.get("container")
        raw = await read_body(request)
        if raw.strip():
            try:
                body = jsonwire.loads_request(raw)
            except ValueError:
                raise bad_request("the exec body must be JSON: {\"command\": [...]}") from None
            if isinstance(body, dict):
                command = body.get("command") or command
                container = body.get("container") or container
        if not command or not isinstance(command, list):
            raise bad_request("you must specify at least one command for the container")
        container = choose_container(pod, container)
        url = f"{base}/exec/{_path(pod, container)}"
        timeout = aiohttp.ClientTimeout(total=330, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._session(timeout) as session, session.post(url, json={"command": command}) as upstream:
                if upstream.status >= 400:
                    return await _relay_error(upstream)
                data = await upstream.read()
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            raise _unreachable(what, base, exc) from None
        return web.Response(body=data, content_type="application/json")

    async def _exec_stream(self, request: web.Request, pod: dict[str, Any], ip: Address, base: str,
                           what: str, *, attach: bool = False) -> web.StreamResponse:
        opts = rc.ExecOptions.from_query(request.query)
        problem = opts.attach_problem() if attach else opts.problem()
        if problem:
            raise bad_request(problem)
        container = choose_container(pod, opts.container)
        if not rc.is_websocket(request.headers):
            if not rc.is_spdy(request.headers):
                raise bad_request("Upgrade request required")
            return await self._spdy_stream(request, pod, container, opts, ip, base, what, attach=attach)
        client = web.WebSocketResponse(protocols=rc.PROTOCOLS, heartbeat=rc.HEARTBEAT_SECONDS,
                                       max_msg_size=rc.MAX_MESSAGE_BYTES)
        ready = client.can_prepare(request)
        if not ready.ok:
            raise bad_request("the WebSocket upgrade of pods/exec must be a GET with the WebSocket headers")
        if ready.protocol is None:
            offered = request.headers.get("Sec-WebSocket-Protocol", "") or "none"
            raise bad_request(f"no supported WebSocket subprotocol was offered ({offered}); pods/exec "
                              f"speaks {', '.join(rc.PROTOCOLS)}")
        await client.prepare(request)
        url = f"{base}/{'attach' if attach else 'exec'}/{_path(pod, container)}"
        try:
            status = await self._relay(client, ready.protocol, url, opts.query(attach=attach), what, base)
            if status is not None and not client.closed:
                await client.send_bytes(rc.status_frame(status))
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            if not client.closed:
                await client.close()
        return client

    async def _relay(self, client: web.WebSocketResponse, protocol: str, url: str, params: list[tuple[str, str]],
                     what: str, base: str) -> dict[str, Any] | None:
        """Relay messages both ways until one side ends; returns the Status the client still
        needs (when the agent could not be reached or went away without one), else None."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        async with self._session(timeout) as session:
            try:
                agent = await session.ws_connect(url, params=params, protocols=(protocol,),
                                                 heartbeat=rc.HEARTBEAT_SECONDS,
                                                 max_msg_size=rc.MAX_MESSAGE_BYTES)
            except aiohttp.WSServerHandshakeError as exc:
                return rc.failure(502, "BadGateway", f"{what}: the node agent at {base} refused the stream: "
                                  f"{exc.status} {exc.message}")
            except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
                err = _unreachable(what, base, exc)
                return rc.failure(err.code, err.reason, err.message)
            async with agent:
                seen_status = False

                async def to_agent() -> None:
                    async for msg in client:
                        if msg.type == WSMsgType.BINARY:
                            await agent.send_bytes(msg.data)
                        elif msg.type == WSMsgType.TEXT:
                            # kube-apiserver reads a text message as channel data too: the
                            # official Python client sends stdin written as a str that way
                            await agent.send_bytes(msg.data.encode())

                async def to_client() -> None:
                    nonlocal seen_status
                    async for msg in agent:
                        if msg.type == WSMsgType.BINARY and msg.data:
                            if msg.data[0] == rc.ERROR and len(msg.data) > 1:
                                seen_status = True
                            await client.send_bytes(msg.data)

                up, down = asyncio.create_task(to_agent()), asyncio.create_task(to_client())
                try:
                    done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (up, down):
                        task.cancel()
                    results = await asyncio.gather(up, down, return_exceptions=True)
                if down not in done:
                    return None  # the client is gone; leaving closes the agent's side, which ends the command
                error = results[1]
                if seen_status:
                    return None
                detail = f": {error}" if isinstance(error, BaseException) and str(error) else ""
                return rc.failure(503, "ServiceUnavailable", f"{what}: the connection to the node agent at {base} "
                                  f"ended before the command's status{detail}")


def _path(pod: dict[str, Any], container: str | None = None) -> str:
    meta = pod["metadata"]
    parts = (meta["namespace"], meta["name"]) + ((container,) if container is not None else ())
    return "/".join(quote(p, safe="") for p in parts)


async def _relay_error(upstream: aiohttp.ClientResponse) -> web.Response:
    data = await upstream.read()
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return web.Response(status=upstream.status, body=data, content_type="application/json")
    raise ApiError(upstream.status, "InternalError", data.decode(errors="replace")[:500] or "node agent error")


def _unreachable(what: str, base: str, exc: BaseException) -> ApiError:
    return ApiError(503, "ServiceUnavailable",
                    f"{what} is served by the pod's node agent: error dialing backend {base}: "
                    f"{exc or type(exc).__name__}")
