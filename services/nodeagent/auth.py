"""Who may use the agent's port, as the kubelet decides it (x509 authentication and
`--authorization-mode=Webhook`, pkg/kubelet/server/auth.go).

The port serves HTTPS with the node's certificate and asks callers for a client certificate
signed by the cluster CA: the CN is the user, the Organizations its groups (the API server
calls as `kube-apiserver-kubelet-client`). Each request is then authorized by asking the API
server a SubjectAccessReview on this node, with the kubelet's mapping of paths to subresources:
/metrics `nodes/metrics`, /logs `nodes/log`, /stats `nodes/stats`, the health paths
`nodes/healthz`, and everything else (exec, containerLogs) `nodes/proxy`; the verb comes from
the method (GET get, POST create, ...). Answers are cached as the kubelet caches them
(allowed for 5 minutes, denied for 30 seconds).

Health for local probes lives on a plain loopback port instead (`--healthz-port`, the
kubelet's 10248), so nothing unauthenticated reaches the secure port.
"""
from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable
from kubecore.client.x509 import subject_of
from services.nodeagent.httpstatus import status_response

log = logging.getLogger("nodeagent.auth")
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_SUBRESOURCES = (("/metrics", "metrics"), ("/logs", "log"), ("/stats", "stats"),
                 ("/spec", "spec"), ("/healthz", "healthz"), ("/livez", "healthz"),
                 ("/readyz", "healthz"))
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...]


def server_ssl_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(client_ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def caller_of(request: web.Request) -> Caller | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    cert: dict[str, Any] | None = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    cn, orgs = subject_of(cert)
    return Caller(cn, (*orgs, "system:authenticated")) if cn else None


def node_subresource(path: str) -> str:
    for prefix, sub in _SUBRESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            return sub
    return "proxy"


def access_review(caller: Caller, node: str, verb: str, subresource: str) -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": caller.user, "groups": list(caller.groups),
                     "resourceAttributes": {"verb": verb, "resource": "nodes", "name": node,
                                            "subresource": subresource}}}


class Authorizer:
    """SubjectAccessReviews to the API server, with the kubelet's cache."""

    def __init__(self, client: ApiClient, node: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.node, self.clock = client, node, clock
        self._cache: dict[tuple[Caller, str, str], tuple[float, bool, str]] = {}

    async def allowed(self, caller: Caller, verb: str, subresource: str) -> tuple[bool, str]:
        key = (caller, verb, subresource)
        hit = self._cache.get(key)
        now = self.clock()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        review = await self.client.request("POST", SAR_PATH,
                                           body=access_review(caller, self.node, verb, subresource))
        status = (review or {}).get("status") or {}
        allowed, reason = bool(status.get("allowed")), str(status.get("reason") or "")
        self._cache[key] = (now + (ALLOWED_TTL if allowed else DENIED_TTL), allowed, reason)
        return allowed, reason


class AllowAll:
    async def allowed(self, caller: Caller, verb: str, subresource: str) -> tuple[bool, str]:
        return True, ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(authorizer: Authorizer | AllowAll, node: str) -> Any:
    """The filter in front of every route of the secure port."""

    @web.middleware
    async def authenticate_and_authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        caller = caller_of(request)
        if caller is None:
            return status_response(401, "Unauthorized", "Unauthorized")
        verb = _VERBS.get(request.method, request.method.lower())
        sub = node_subresource(request.path)
        try:
            allowed, reason = await authorizer.allowed(caller, verb, sub)
        except (ApiError, ApiUnavailable) as exc:
            log.warning("authorizing %s %s for %s: %s", verb, sub, caller.user, exc)
            return status_response(503, "ServiceUnavailable", f"could not authorize the request: {exc}")
        if not allowed:
            message = (f"Forbidden (user={caller.user}, verb={verb}, resource=nodes, "
                       f"subresource={sub})" + (f": {reason}" if reason else ""))
            return status_response(403, "Forbidden", message)
        return await handler(request)

    return authenticate_and_authorize
