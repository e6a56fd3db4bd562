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
from kubecore.api.errors import ApiError, internal, method_not_allowed, no_such_path
from kubecore.controller.health import Health, add_health_routes
from kubecore.controller.healthz import Check, NamedChecks, always_ok
from services.apiserver import admission, authn, authz
from services.apiserver.admission.noderestriction import NodeRestriction
from services.apiserver.admission.podsecurity import PodSecurity, default_policy
from services.apiserver.admission.serviceaccount import ServiceAccountAdmission
from services.apiserver.authn import oidc
from services.apiserver.authn.keys import load_issuer
from services.apiserver.authn.serviceaccount import ServiceAccountTokens
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
from services.apiserver.registry import endpointreconciler, sweepers
from services.apiserver.registry.endpointreconciler import LeaseEndpointReconciler
from services.apiserver.registry.lookup import CachedGetter
from services.apiserver.registry.store import Store
from services.apiserver.registry.strategy import prepare_create
from services.apiserver.settings import Settings, authorization_modes
from services.apiserver.storage.allocations import NodeAllocations, ServiceAllocations
from services.apiserver.storage.allocator import RangeAllocator, SubnetRange, ip_allocator
from services.apiserver.storage.compactor import run_compactor
from services.apiserver.storage.encryptionconfig import load as load_encryption_config
from services.apiserver.storage.etcd import Etcd, EtcdUnavailable
from services.apiserver.storage.masterleases import MasterLeases
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
            return error_response(no_such_path()) if api_root_path(request.path) else page_not_found()
        if exc.status == 405:
            return error_response(method_not_allowed())
        raise
    except EtcdUnavailable as exc:
        code = 503
        return error_response(ApiError(503, "ServiceUnavailable", f"etcd is not answering: {exc}"))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        code = 500
        return error_response(internal("the request failed on the server; see the apiserver log"))
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


def api_root_path(path: str) -> bool:
    """Whether kube-apiserver's go-restful container claims `path` (/api and below, /apis,
    an installed group and below, /version and below): a 404 there is a JSON Status; any
    other path gets Go's plain-text 404."""
    segs = path.split("/")
    if segs[1] in ("api", "version"):
        return True
    return segs[1] == "apis" and (len(segs) == 2 or not segs[2] or segs[2] in R.groups())


async def resource_route(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    t = request.get(TARGET)
    if t is not None:
        return await handlers.dispatch(state, request, t)
    if not api_root_path(request.path):
        return page_not_found()
    try:
        group, version, rest = parse_path(request.path)
    except NoSuchPath:
        raise no_such_path() from None
    if request.method == "GET" and not rest:
        if group == "" and version == "v1" or version in R.groups().get(group, []):
            return json_response(discovery.resource_list(group, version))
        raise no_such_path()
    try:
        t = resolve(group, version, rest)
    except NoSuchPath:
        raise no_such_path() from None
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
        return page_not_found()
    return json_response(grp)


async def openid_configuration(request: web.Request) -> web.Response:
    issuer = request.app[STATE].service_accounts
    body = oidc.openid_configuration(issuer.token_settings.issuer, issuer.jwks_uri, issuer.public_keys)
    return web.Response(body=body, content_type="application/json",
                        headers={"Cache-Control": oidc.CACHE_CONTROL})


async def openid_jwks(request: web.Request) -> web.Response:
    body = oidc.jwks(request.app[STATE].service_accounts.public_keys)
    return web.Response(body=body, content_type=oidc.JWKS_CONTENT_TYPE,
                        headers={"Cache-Control": oidc.CACHE_CONTROL})


async def version(request: web.Request) -> web.Response:
    return json_response(discovery.VERSION_INFO)


def page_not_found() -> web.Response:
    """Go's http.NotFound: kube-apiserver's answer for a path none of its handlers claims
    (one outside /api, the installed groups, /version; `no_such_path` is for those)."""
    return web.Response(status=404, text="404 page not found\n", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def document_response(request: web.Request, body: bytes, content_type: str, etag: str,
                      headers: Mapping[str, str] | None = None) -> web.Response:
    """A document as Go's http.ServeContent serves it with an ETag: 304 (no body) when the
    client's If-None-Match names it."""
    hdrs = {"Vary": "Accept", "Etag": etag, **(headers or {})}
    wanted = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    if etag in wanted or "*" in wanted:
        return web.Response(status=304, headers=hdrs)
    return web.Response(body=body, content_type=content_type, headers=hdrs)


async def openapi_v2(request: web.Request) -> web.Response:
    found = openapi.v2_negotiate(request.headers.get("Accept", ""))
    if found is None:
        return web.Response(status=406, headers={"Vary": "Accept"})
    body, content_type = found
    return document_response(request, body, content_type, openapi.v2_etag())


async def openapi_v3_root(request: web.Request) -> web.Response:
    body = openapi.v3_root()
    return document_response(request, body, "application/json", openapi.etag(body))


async def openapi_v3(request: web.Request) -> web.Response:
    """One group version's document; with `?hash=` it is immutable (a stale hash is sent on
    to the current one with a 301), as kube-openapi's handler3 serves it."""
    path = request.match_info["path"]
    found = openapi.v3_lookup(path)
    if found is None:
        return page_not_found()
    if not openapi.v3_acceptable(request.headers.get("Accept", "")):
        return web.Response(status=406, headers={"Vary": "Accept"})
    body, digest = found
    wanted = request.query.get("hash", "")
    if wanted and wanted != digest:
        raise web.HTTPMovedPermanently(openapi.v3_url(path, digest))
    headers = {}
    if wanted:
        expires = time.gmtime(time.time() + 365 * 86400)
        headers = {"Cache-Control": "public, immutable",
                   "Expires": time.strftime("%a, %d %b %Y %H:%M:%S GMT", expires)}
    return document_response(request, body, "application/json", f'"{digest}"', headers)


def etcd_check(state: ApiState) -> Check:
    """kube-apiserver's `etcd` check: the storage answers within 2 s."""
    async def check() -> str | None:
        try:
            await asyncio.wait_for(state.etcd.revision(), timeout=2)
        except (TimeoutError, EtcdUnavailable) as exc:
            return f"etcd did not answer: {exc or 'timed out'}"
        return None

    return check


def informers_synced(state: ApiState) -> Check:
    """kube-apiserver's `informer-sync` check: every watch cache has its first list."""
    async def check() -> str | None:
        waiting = [p for p, c in state.caches.items() if not c.ready.is_set()]
        return "not synced: " + ", ".join(waiting) if waiting else None

    return check


def health_checks(state: ApiState) -> NamedChecks:
    """The checks /livez, /healthz and /readyz list, named as kube-apiserver names them."""
    live = [("ping", always_ok), ("log", always_ok), ("etcd", etcd_check(state))]
    return NamedChecks(livez=live, readyz=[*live, ("informer-sync", informers_synced(state))])


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


def build_authentication(settings: Settings,
                         service_accounts: authn.Authenticator | None = None) -> authn.Authenticator:
    """kube-apiserver's authenticator chain for the flags given: client certificates when a
    client CA is set, then ServiceAccount tokens."""
    authenticators: list[authn.Authenticator] = []
    if settings.client_ca_file:
        authenticators.append(ClientCertificates())
    if service_accounts is not None:
        authenticators.append(service_accounts)
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


def build_admission(settings: Settings, authorization: Authorization,
                    caches: Mapping[str, WatchCache], storage: Storage,
                    getter: CachedGetter) -> admission.Chain:
    """The admission plugins in kube-apiserver's order, less those --disable-admission-plugins
    names."""
    plugins: list[tuple[str, admission.Plugin]] = [
        ("ServiceAccount", ServiceAccountAdmission(getter)),
        ("NodeRestriction", NodeRestriction(caches)),
        ("PodSecurity", PodSecurity(storage, default_policy(settings.pod_security_default_enforce),
                                    exempt_namespaces=settings.pod_security_exempt_namespaces)),
    ]
    if authorization.rbac is not None:
        plugins.append(("RBACEscalation", EscalationCheck(authorization.authorizer, authorization.rbac)))
    disabled = set(settings.disable_admission_plugins)
    return admission.Chain([plugin for name, plugin in plugins if name not in disabled])


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
    transformers = (load_encryption_config(settings.encryption_provider_config)
                    if settings.encryption_provider_config else {})
    storage = Storage(etcd, allocations, transformers)
    caches: dict[str, WatchCache] = {}  # filled at start-up, one per resource
    authorization = build_authorization(settings, caches)
    issuer = load_issuer(settings, external_address=external_address(settings))
    getter = CachedGetter(caches, storage)
    sa_tokens = ServiceAccountTokens(issuer.verifier(), getter)
    return ApiState(settings=settings, etcd=etcd, storage=storage,
                    registry=Store(storage, caches, build_admission(settings, authorization, caches,
                                                                   storage, getter)),
                    metrics=ApiMetrics.create(etcd.batcher), caches=caches,
                    authenticator=build_authentication(settings, sa_tokens),
                    authorizer=authorization.authorizer, reviewer=authorization.reviewer,
                    service_accounts=issuer,
                    nodes=NodeProxy(kubelet_port=settings.kubelet_port, ranges=settings.node_ranges(),
                                    ssl_context=kubelet_client_context(
                                        settings.kubelet_client_certificate, settings.kubelet_client_key,
                                        settings.kubelet_certificate_authority)))


def advertised_host(settings: Settings) -> str:
    """The address this server gives others: --advertise-address, else its first bind address."""
    return settings.advertise_address or settings.bind_address.split(",")[0].strip()


def external_address(settings: Settings) -> str:
    host = advertised_host(settings)
    return f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"


def background_work(state: ApiState,
                    reconciler: LeaseEndpointReconciler | None = None) -> list[Coroutine[Any, Any, None]]:
    """The loops the server runs besides serving requests."""
    s = state.settings
    work = [
        sweepers.sweep_overdue_pods(state.storage, state.caches, interval=s.sweep_interval,
                                    force_delete_after=s.pod_force_delete_after),
        sweepers.sweep_expired_events(state.storage, state.caches, interval=s.event_sweep_interval,
                                      ttl=s.event_ttl),
        state.registry.namespaces.resume(),
    ]
    if reconciler is not None:
        work.append(endpointreconciler.run(reconciler, s.endpoint_reconciler_interval))
    if s.etcd_compaction_interval > 0:
        work.append(run_compactor(state.etcd, s.etcd_compaction_interval))
    return work


def endpoint_reconciler(state: ApiState) -> LeaseEndpointReconciler | None:
    """This server's share of the kubernetes Service's endpoints (--endpoint-reconciler-type
    lease), or None: another type, or an address no endpoint may have (loopback, say)."""
    s = state.settings
    if s.endpoint_reconciler_type != "lease":
        return None
    ip = advertised_host(s)
    why = endpointreconciler.publishable(ip)
    if why is not None:
        log.warning("not listing this server in the kubernetes Service: %s (set --advertise-address)", why)
        return None
    return LeaseEndpointReconciler(state.storage, MasterLeases(state.etcd, ttl=s.master_lease_ttl),
                                   ip=ip, port=s.port, prepare=prepare_create)


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
                           watcher_buffer=settings.watcher_buffer, codec=state.storage.codec(rt))
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
    reconciler = endpoint_reconciler(state)
    tasks = [asyncio.create_task(coro) for coro in background_work(state, reconciler)]
    yield
    for task in tasks:
        task.cancel()
    state.registry.namespaces.cancel()
    if reconciler is not None:  # kube-apiserver's pre-shutdown hook: leave the list now
        try:
            await asyncio.wait_for(reconciler.remove(), timeout=5)
        except (ApiError, TimeoutError) as exc:
            log.warning("this server stays in the kubernetes Service until its lease ends: %s", exc)


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
    add_health_routes(app, Health(registry=state.metrics.registry, named=health_checks(state)))
    r = app.router
    r.add_get("/version", version)
    r.add_get("/version/", version)
    r.add_get(oidc.CONFIGURATION_PATH, openid_configuration)
    r.add_get(oidc.JWKS_PATH, openid_jwks)
    r.add_get("/openapi/v2", openapi_v2)
    r.add_get("/openapi/v3", openapi_v3_root)
    r.add_get("/openapi/v3/{path:.+}", openapi_v3)
    for path, handler in (("/api", api_root), ("/apis", apis_root), ("/apis/{group}", api_group)):
        r.add_get(path, handler)
        r.add_get(path + "/", handler)  # go-restful and the aggregator serve both forms
    r.add_route("*", "/api/{tail:.+}", resource_route)
    r.add_route("*", "/apis/{group}/{tail:.+}", resource_route)
    return app
