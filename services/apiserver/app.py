"""The API server application (the app factory `create_app`): what one process holds, the
route table, the error and metrics middleware, and the background work started and stopped
with the app (watch caches, sweepers, namespaces left Terminating)."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, internal
from kubecore.controller.health import Health, ReadinessCheck, add_health_routes
from services.apiserver import admission, authn, authz
from services.apiserver.admission.noderestriction import NodeRestriction
from services.apiserver.authn.x509 import ClientCertificates
from services.apiserver.authz import bootstrap
from services.apiserver.authz.escalation import EscalationCheck
from services.apiserver.authz.node import NodeAuthorizer
from services.apiserver.authz.rbac import RBACAuthorizer
from services.apiserver.authz.reviews import AllRules, Reviewer, RuleResolver
from services.apiserver.endpoints import discovery, filters, handlers, openapi
from services.apiserver.endpoints.context import ApiState
from services.apiserver.endpoints.limits import (
    RETRY_AFTER_SECONDS,
    UNCOUNTED_PATHS,
    InFlight,
    Kind,
    client_key,
    request_kind,
    too_many_requests,
)
from services.apiserver.endpoints.metrics import ApiMetrics
from services.apiserver.endpoints.nodeproxy import NodeProxy, kubelet_client_context
from services.apiserver.endpoints.requests import (
    UNREAD_BODY_CODES,
    NoSuchPath,
    Target,
    answer_and_close,
    error_response,
    json_response,
    parse_path,
    resolve,
    warning_headers,
)
from services.apiserver.registry import sweepers
from services.apiserver.registry.store import Store
from services.apiserver.registry.strategy import prepare_create
from services.apiserver.settings import Settings, authorization_modes
from services.apiserver.storage.allocations import NodeAllocations, ServiceAllocations
from services.apiserver.storage.allocator import RangeAllocator, SubnetRange, ip_allocator
from services.apiserver.storage.etcd import Etcd, EtcdUnavailable
from services.apiserver.storage.store import Storage
from services.apiserver.storage.watchcache import WatchCache

log = logging.getLogger("apiserver")
STATE = web.AppKey("state", ApiState)
TARGET = web.RequestKey("target", Target)  # the request's resolved Target, kept by `api_errors`
IN_FLIGHT = web.AppKey("in_flight", InFlight)
DNS_SERVICE_OFFSET = 10  # 10.96.0.10: kept for the cluster DNS service
KUBERNETES_SERVICE_OFFSET = 1


def _verb(request: web.Request, has_name: bool) -> str:
    m = request.method
    if m == "GET":
        if not has_name:
            return "WATCH" if request.query.get("watch", "").lower() in ("true", "1") else "LIST"
        return "GET"
    return {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "PATCH", "DELETE": "DELETE"}.get(m, m)


@web.middleware
async def api_errors(request: web.Request, handler) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    resource, verb, code = "", request.method, 500
    try:
        try:
            group, version, rest = parse_path(request.path)
            t = request[TARGET] = resolve(group, version, rest)
            resource, verb = t.rt.plural, _verb(request, t.name is not None)
        except NoSuchPath:
            pass
        user = await filters.authenticate(state.authenticator, request)
        user = filters.impersonate(state.authorizer, request, user)
        filters.authorize(state.authorizer, request, user, request.get(TARGET))
        resp = await handler(request)
        code = resp.status
        if not resp.prepared:
            for warning in warning_headers(request):
                resp.headers.add("Warning", warning)
        return resp
    except ApiError as err:
        code = err.code
        resp = error_response(err)
        if err.code in UNREAD_BODY_CODES:
            await answer_and_close(request, resp)
        return resp
    except web.HTTPException as exc:
        code = exc.status
        if exc.status == 404:
            return error_response(ApiError(404, "NotFound",
                                           "the server could not find the requested resource"))
        if exc.status == 405:
            return error_response(ApiError(405, "MethodNotAllowed",
                                           "the server does not allow this method on the requested resource"))
        raise
    except EtcdUnavailable as exc:
        code = 503
        return error_response(ApiError(503, "ServiceUnavailable", f"etcd is not answering: {exc}"))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        code = 500
        return error_response(internal("an internal error occurred; see the apiserver log"))
    finally:
        if resource:
            state.metrics.record(verb, resource, code, None if verb == "WATCH"
                                 else time.perf_counter() - started)


@web.middleware
async def in_flight_limits(request: web.Request, handler) -> web.StreamResponse:
    """Each client's requests in flight within its limits (`endpoints/limits.py`); inside
    `api_errors`, which has resolved the request's Target and records the 429."""
    if request.path in UNCOUNTED_PATHS:
        return await handler(request)
    t = request.get(TARGET)
    kind, client = request_kind(request, t.sub if t else None), client_key(request)
    in_flight = request.app[IN_FLIGHT]
    if not in_flight.acquire(client, kind):
        resp = error_response(too_many_requests())
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return resp
    try:
        return await handler(request)
    finally:
        in_flight.release(client, kind)


async def resource_route(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    t = request.get(TARGET)
    if t is not None:
        return await handlers.dispatch(state, request, t)
    try:
        group, version, rest = parse_path(request.path)
    except NoSuchPath:
        raise ApiError(404, "NotFound", "the server could not find the requested resource") from None
    if request.method == "GET":
        if not rest:
            if group == "" and version == "v1" or version in R.groups().get(group, []):
                return json_response(discovery.resource_list(group, version))
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
    try:
        t = resolve(group, version, rest)
    except NoSuchPath:
        raise ApiError(404, "NotFound", "the server could not find the requested resource") from None
    return await handlers.dispatch(state, request, t)


async def api_root(request: web.Request) -> web.Response:
    wanted = discovery.aggregated_version(request.headers.get("Accept", ""))
    if wanted:
        return json_response(discovery.aggregated(True, wanted),
                             content_type=discovery.aggregated_content_type(wanted))
    s = request.app[STATE].settings
    return json_response(discovery.api_versions(f"{s.advertise_address or s.bind_address}:{s.port}"))


async def apis_root(request: web.Request) -> web.Response:
    wanted = discovery.aggregated_version(request.headers.get("Accept", ""))
    if wanted:
        return json_response(discovery.aggregated(False, wanted),
                             content_type=discovery.aggregated_content_type(wanted))
    return json_response(discovery.api_group_list())


async def api_group(request: web.Request) -> web.Response:
    grp = discovery.api_group(request.match_info["group"])
    if grp is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return json_response(grp)


async def version(request: web.Request) -> web.Response:
    return json_response(discovery.VERSION_INFO)


def _accepts_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return not accept or any(t.split(";")[0].strip() in ("application/json", "*/*", "application/*")
                             for t in accept.split(","))


async def openapi_v2(request: web.Request) -> web.Response:
    if not _accepts_json(request):
        raise ApiError(406, "NotAcceptable", "only application/json is supported for /openapi/v2 "
                       "(this server does not produce protobuf); /openapi/v3 has the operations")
    return web.Response(body=openapi.v2(), content_type="application/json")


async def openapi_v3_root(request: web.Request) -> web.Response:
    return web.Response(body=openapi.v3_root(), content_type="application/json")


async def openapi_v3(request: web.Request) -> web.Response:
    doc = openapi.v3_lookup(request.match_info["path"])
    if doc is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return web.Response(body=doc, content_type="application/json")


def readiness(state: ApiState) -> ReadinessCheck:
    """/readyz: every watch cache has its first list, and etcd answers."""
    async def check() -> str | None:
        not_ready = [p for p, c in state.caches.items() if not c.ready.is_set()]
        try:
            await asyncio.wait_for(state.etcd.revision(), timeout=2)
        except (TimeoutError, EtcdUnavailable):
            not_ready.append("etcd")
        return "not ready: " + ", ".join(not_ready) if not_ready else None

    return check


async def _bootstrap(state: ApiState) -> None:
    """What must exist from the start: the default namespaces, the `kubernetes` Service on
    the first address of the service range, and (under RBAC) the bootstrap roles and
    bindings, reconciled."""
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        try:
            await state.storage.create(R.NAMESPACES, prepare_create(
                R.NAMESPACES, {"metadata": {"name": ns}}, None))
        except ApiError as exc:
            if exc.code != 409:
                raise
    if state.settings.create_default_service:
        network = ipaddress.IPv4Network(state.settings.service_cidr)
        ip = str(network.network_address + KUBERNETES_SERVICE_OFFSET)
        svc = {"metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443,
                                                    "protocol": "TCP", "targetPort": state.settings.port}]}}
        try:
            await state.storage.create(R.SERVICES, prepare_create(R.SERVICES, svc, "default"))
        except ApiError as exc:
            if exc.code != 409 and exc.code != 422:
                raise
    if "RBAC" in authorization_modes(state.settings.authorization_mode):
        await bootstrap.reconcile(state.storage)


def build_authentication(settings: Settings) -> authn.Authenticator:
    """kube-apiserver's authenticator chain for the flags given: client certificates when a
    client CA is set (and ServiceAccount tokens when a key verifies them)."""
    authenticators: list[authn.Authenticator] = []
    if settings.client_ca_file:
        authenticators.append(ClientCertificates())
    return authn.Chain(authenticators, anonymous=settings.anonymous_auth)


@dataclass
class Authorization:
    """The authorizer chain of --authorization-mode (system:masters first, as kube-apiserver
    puts it), the reviews that ask it, and RBAC when it is one of the modes (the escalation
    check and the bootstrap policy need it)."""

    authorizer: authz.Authorizer
    reviewer: Reviewer
    rbac: RBACAuthorizer | None


def build_authorization(settings: Settings, caches: Mapping[str, WatchCache]) -> Authorization:
    authorizers: list[authz.Authorizer] = [authz.PrivilegedGroups("system:masters")]
    resolvers: list[RuleResolver] = []
    rbac = None
    for mode in authorization_modes(settings.authorization_mode):
        if mode == "Node":
            node = NodeAuthorizer(caches)
            authorizers.append(node)
            resolvers.append(node)
        elif mode == "RBAC":
            rbac = RBACAuthorizer(caches)
            authorizers.append(rbac)
            resolvers.append(rbac)
        else:
            authorizers.append(authz.AlwaysAllow())
            resolvers.append(AllRules())
    union = authz.Union(authorizers)
    return Authorization(union, Reviewer(union, resolvers), rbac)


def build_admission(authorization: Authorization, caches: Mapping[str, WatchCache]) -> admission.Chain:
    plugins: list[admission.Plugin] = [NodeRestriction(caches)]
    if authorization.rbac is not None:
        plugins.append(EscalationCheck(authorization.authorizer, authorization.rbac))
    return admission.Chain(plugins)


def build_state(settings: Settings) -> ApiState:
    etcd = Etcd(settings.etcd_endpoints, keepalive=(settings.etcd_keepalive_time,
                                                    settings.etcd_keepalive_timeout))
    lo, hi = (int(x) for x in settings.node_port_range.split("-"))
    service_ips = ip_allocator("serviceips", settings.service_cidr,
                               reserved_offsets=(KUBERNETES_SERVICE_OFFSET, DNS_SERVICE_OFFSET))
    allocations = {
        "services": ServiceAllocations(etcd, service_ips, RangeAllocator("servicenodeports", lo, hi)),
        "nodes": NodeAllocations(etcd, SubnetRange("podcidrs", settings.cluster_cidr,
                                                   settings.node_cidr_mask), settings.node_ranges()),
    }
    storage = Storage(etcd, allocations)
    caches: dict[str, WatchCache] = {}  # filled at start-up, one per resource
    authorization = build_authorization(settings, caches)
    return ApiState(settings=settings, etcd=etcd, storage=storage,
                    registry=Store(storage, caches, build_admission(authorization, caches)),
                    metrics=ApiMetrics.create(etcd.batcher), caches=caches,
                    authenticator=build_authentication(settings),
                    authorizer=authorization.authorizer, reviewer=authorization.reviewer,
                    nodes=NodeProxy(kubelet_port=settings.kubelet_port, ranges=settings.node_ranges(),
                                    ssl_context=kubelet_client_context(
                                        settings.kubelet_client_certificate, settings.kubelet_client_key,
                                        settings.kubelet_certificate_authority)))


def background_work(state: ApiState) -> list[Coroutine[Any, Any, None]]:
    """The loops the server runs besides serving requests."""
    s = state.settings
    return [
        sweepers.sweep_overdue_pods(state.storage, state.caches, interval=s.sweep_interval,
                                    force_delete_after=s.pod_force_delete_after),
        sweepers.sweep_expired_events(state.storage, state.caches, interval=s.event_sweep_interval,
                                      ttl=s.event_ttl),
        state.registry.namespaces.resume(),
    ]


async def storage_and_caches(app: web.Application) -> AsyncIterator[None]:
    """Start-up: the objects that must exist, then a watch cache per resource; shut-down:
    the caches and the etcd client."""
    state, settings = app[STATE], app[STATE].settings
    for attempt in range(100):
        try:
            await _bootstrap(state)
            break
        except (ApiError, EtcdUnavailable) as exc:
            if attempt == 99:
                raise
            log.warning("waiting for etcd: %s", exc)
            await asyncio.sleep(0.3)
    for rt in R.ALL:
        cache = WatchCache(state.etcd, rt, window=settings.watch_window,
                           watcher_buffer=settings.watcher_buffer)
        state.caches[rt.plural] = cache
        await cache.start()
    yield
    # aetcd's watch set-up can sit on its own lock after a cancel until the stream ends:
    # cancel everything, close the client (that ends the stream), then wait briefly.
    for cache in state.caches.values():
        cache.cancel()
    try:
        await asyncio.wait_for(state.etcd.close(), timeout=5)
    except TimeoutError:
        log.warning("etcd client did not close within 5 s")
    for cache in state.caches.values():
        await cache.stop(timeout=2)


async def background(app: web.Application) -> AsyncIterator[None]:
    """The sweepers and the namespaces left Terminating run while the app does (after the
    caches start, stopped before they do)."""
    state = app[STATE]
    tasks = [asyncio.create_task(coro) for coro in background_work(state)]
    yield
    for task in tasks:
        task.cancel()
    state.registry.namespaces.cancel()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[api_errors, in_flight_limits],
                          client_max_size=settings.max_body_bytes + 1)
    state = build_state(settings)
    app[STATE] = state
    app[IN_FLIGHT] = InFlight({Kind.READ_ONLY: settings.max_requests_inflight,
                               Kind.MUTATING: settings.max_mutating_requests_inflight,
                               Kind.LONG_RUNNING: settings.max_watches_per_client})

    async def end_watches(app: web.Application) -> None:
        # Open watches would otherwise hold shutdown until aiohttp's timeout: end them, as
        # kube-apiserver closes watches when it terminates; clients re-watch elsewhere.
        for cache in state.caches.values():
            cache.end_all()

    app.cleanup_ctx.append(storage_and_caches)
    app.cleanup_ctx.append(background)
    app.on_shutdown.append(end_watches)
    add_health_routes(app, Health(registry=state.metrics.registry, ready=readiness(state)))
    r = app.router
    r.add_get("/version", version)
    r.add_get("/openapi/v2", openapi_v2)
    r.add_get("/openapi/v3", openapi_v3_root)
    r.add_get("/openapi/v3/{path:.+}", openapi_v3)
    r.add_get("/api", api_root)
    r.add_get("/apis", apis_root)
    r.add_get("/apis/{group}", api_group)
    r.add_route("*", "/api/{tail:.+}", resource_route)
    r.add_route("*", "/apis/{group}/{tail:.+}", resource_route)
    return app
