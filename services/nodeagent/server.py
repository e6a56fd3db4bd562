"""The agent's HTTP server (kubelet's port): health, metrics, container logs, exec.

Routes are kept apart from the thin handlers; the handlers ask the agent (`find_container`) and
the runtime, and answer errors as Kubernetes `Status` objects, which the API server passes on.

- GET  /healthz, /livez, /readyz (200 once the node is registered, its network configured and the
  pod cache synced), /metrics: kubecore's health routes, shared by every service
- GET  /containerLogs/{namespace}/{pod}/{container}?follow=&previous=&tailLines=&sinceSeconds=&sinceTime=
       &timestamps=&limitBytes=  (text/plain, `podlog`)
- POST /exec/{namespace}/{pod}/{container}  body {"command": [...], "timeoutSeconds": N}
       -> {"exitCode", "stdout", "stderr"}
- GET  /exec/{namespace}/{pod}/{container}?command=..&stdin=..&stdout=..&stderr=..&tty=..
       upgraded to a WebSocket of the v5/v4.channel.k8s.io protocol (`execstream`)
- GET  /attach/{namespace}/{pod}/{container}?stdin=..&stdout=..&stderr=..&tty=..  the same WebSocket
       protocol, joined to the container's own stdio (`attachstream`)
- POST /exec/..., /attach/... upgraded to SPDY/3.1, protocol v4.channel.k8s.io (kubectl up to 1.29:
       `spdystreams`)
- POST /portForward/{namespace}/{pod}  upgraded to SPDY/3.1, protocol portforward.k8s.io (`portforward`)
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from kubecore.api.errors import ApiError
from kubecore.api.podlogs import PodLogOptions
from kubecore.controller import upgrade
from kubecore.controller.health import Health, ReadinessCheck, add_health_routes
from services.nodeagent import attachstream, auth, execstream, netdebug, netns, podlog, portforward, spdystreams
from services.nodeagent.agent import Agent, PodNotHere
from services.nodeagent.httpstatus import status_response
from services.nodeagent.runtime import CONTAINER_RUNNING, NotFoundError, RuntimeServiceError

log = logging.getLogger("nodeagent.server")
AGENT = web.AppKey("agent", Agent)
MAX_EXEC_SECONDS = 300.0


def agent_ready(agent: Agent) -> ReadinessCheck:
    """/readyz: the node registered, its network configured and the pod cache synced."""
    async def check() -> str | None:
        if not agent.ready.is_set():
            return "node agent not ready: registering, waiting for podCIDR or caches"
        return None

    return check


async def container_logs(request: web.Request) -> web.StreamResponse:
    """The container's log as kubelet serves it: the options of `kubecore.api.podlogs`, the
    previous attempt's log with `previous=true`, following while the container runs."""
    agent = request.app[AGENT]
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    try:
        opts = PodLogOptions.from_query(request.query)
        attempts = agent.find_attempts(ns, pod, container)
    except ApiError as exc:
        return status_response(exc.code, exc.reason, exc.message)
    except PodNotHere as exc:
        return status_response(exc.code, exc.reason, exc.message)
    if opts.previous:
        if len(attempts) < 2:
            return status_response(400, "BadRequest",
                                f'previous terminated container "{container}" in pod "{pod}" not found')
        info = attempts[-2]
    else:
        info = attempts[-1]
    runtime = agent.runtime

    def running() -> bool:
        try:
            if runtime.container_status(info.id).state == CONTAINER_RUNNING:
                return True
        except NotFoundError:
            return False
        io = runtime.container_io(info.id)
        return io is not None and not io.done.is_set()  # output still on its way to the log

    resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await resp.prepare(request)
    try:
        await podlog.read_log(info.log_path, opts, time.time(), resp.write, running)
    except (ConnectionResetError, asyncio.CancelledError):
        return resp
    await resp.write_eof()
    return resp


async def exec_in_container(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]
    if upgrade.is_upgrade(request.headers, "SPDY/3.1"):
        return await spdystreams.serve(request, agent, attach=False)
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    try:
        body: Any = json.loads(await request.read() or b"{}")
    except ValueError:
        return status_response(400, "BadRequest", "the exec body must be JSON: {\"command\": [...]}")
    command = body.get("command") if isinstance(body, dict) else None
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return status_response(400, "BadRequest", "command must be a non-empty list of strings")
    timeout = min(float(body.get("timeoutSeconds") or 60), MAX_EXEC_SECONDS)
    try:
        info = agent.find_container(ns, pod, container)
    except PodNotHere as exc:
        return status_response(exc.code, exc.reason, exc.message)
    if agent.runtime.container_status(info.id).state != CONTAINER_RUNNING:
        return status_response(400, "BadRequest",
                            f"cannot exec in a container that is not running: container {container} of pod {ns}/{pod}")
    try:
        code, out, err = await agent.runtime.exec_sync(info.id, command, timeout=timeout)
    except RuntimeServiceError as exc:
        return status_response(500, "InternalError", f"exec in {ns}/{pod}/{container}: {exc}")
    return web.json_response({"exitCode": code, "stdout": out.decode(errors="replace"),
                              "stderr": err.decode(errors="replace")})


async def exec_stream(request: web.Request) -> web.StreamResponse:
    return await execstream.serve(request, request.app[AGENT])


async def attach_stream(request: web.Request) -> web.StreamResponse:
    if upgrade.is_upgrade(request.headers, "SPDY/3.1"):
        return await spdystreams.serve(request, request.app[AGENT], attach=True)
    return await attachstream.serve(request, request.app[AGENT])


async def port_forward(request: web.Request) -> web.StreamResponse:
    return await portforward.serve(request, request.app[AGENT])


def create_app(agent: Agent, authorizer: auth.Authorizer | auth.AllowAll) -> web.Application:
    """The secure port: every route behind the kubelet's authentication and authorization."""
    app = web.Application(middlewares=[auth.middleware(authorizer, agent.cfg.node_name)])
    app[AGENT] = agent
    add_health_routes(app, Health(registry=REGISTRY, ready=agent_ready(agent)))
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_post("/exec/{namespace}/{pod}/{container}", exec_in_container)
    app.router.add_get("/exec/{namespace}/{pod}/{container}", exec_stream)
    app.router.add_get("/attach/{namespace}/{pod}/{container}", attach_stream)
    app.router.add_post("/attach/{namespace}/{pod}/{container}", attach_stream)
    app.router.add_post("/portForward/{namespace}/{pod}", port_forward)
    app.router.add_get("/portForward/{namespace}/{pod}", port_forward)
    netdebug.add_routes(app, agent)
    return app


def create_health_app(agent: Agent) -> web.Application:
    """The plain loopback port: health and metrics only, as the kubelet's healthz port."""
    app = web.Application()
    add_health_routes(app, Health(registry=REGISTRY, ready=agent_ready(agent)))
    return app


async def serve(agent: Agent) -> list[web.AppRunner]:
    """The secure port (HTTPS, callers authenticated and authorized) and the health port,
    both inside the node's network namespace."""
    cfg = agent.cfg
    authorizer = (auth.AllowAll() if cfg.authorization_mode == "AlwaysAllow"
                  else auth.Authorizer(agent.client, cfg.node_name))
    ctx = auth.server_ssl_context(cfg.tls_cert_file, cfg.tls_private_key_file, cfg.client_ca_file)
    runner = web.AppRunner(create_app(agent, authorizer), access_log=None, handler_cancellation=True)
    await runner.setup()
    host = cfg.bind_address or cfg.node_ip
    sock = netns.listening_socket(cfg.host_netns, host, cfg.port)
    await web.SockSite(runner, sock, ssl_context=ctx).start()
    log.info("serving on https://%s:%d", host, cfg.port)
    runners = [runner]
    if cfg.healthz_port:
        health = web.AppRunner(create_health_app(agent), access_log=None)
        await health.setup()
        hsock = netns.listening_socket(cfg.host_netns, cfg.healthz_bind_address, cfg.healthz_port)
        await web.SockSite(health, hsock).start()
        runners.append(health)
    return runners
