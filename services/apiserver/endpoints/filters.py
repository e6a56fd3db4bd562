"""The filters in front of every handler (kube-apiserver's `DefaultBuildHandlerChain`):
authentication, then authorization of what the request asks (`request_attributes`, kube's
`RequestInfoFactory`), each refusing with kube's Status: 401 `Unauthorized`, 403 `Forbidden`
with kube's message (`User "jane" cannot list resource "pods" in API group "" in the
namespace "default"`)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubecore.api.errors import ApiError
from services.apiserver.authn import Authenticator, Credentials
from services.apiserver.authz import Attributes, Authorizer
from services.apiserver.endpoints.requests import Target
from services.apiserver.registry.interfaces import UserInfo

USER = web.RequestKey("user", UserInfo)
# Subresources that open a stream into a container: kube authorizes them as `create` whatever
# the HTTP method (a WebSocket upgrade is a GET), so `get` alone never grants exec.
CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
                 "GET": "get", "HEAD": "get"}


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def credentials(request: web.Request) -> Credentials:
    peer: dict[str, Any] | None = None
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is not None:
        peer = ssl_object.getpeercert() or None
    bearer = None
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        bearer = token.strip()
    return Credentials(peer_cert=peer, bearer=bearer, path=request.path)


def resource_verb(method: str, t: Target, *, watch: bool) -> str:
    if t.sub in CONNECT_SUBRESOURCES:
        return "create"
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "list" if t.name is None else "get"
    if method == "DELETE" and t.name is None:
        return "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())


def request_attributes(request: web.Request, user: UserInfo, t: Target | None) -> Attributes:
    if t is None:
        return Attributes(user=user, verb=_METHOD_VERBS.get(request.method, request.method.lower()),
                          resource_request=False, path=request.path)
    watch = request.query.get("watch", "").lower() in ("true", "1")
    return Attributes(user=user, verb=resource_verb(request.method, t, watch=watch),
                      namespace=t.namespace or "", api_group=t.rt.group, api_version=t.rt.version,
                      resource=t.rt.plural, subresource=t.sub or "", name=t.name or "")


def forbidden_message(attrs: Attributes) -> str:
    """kube's `forbiddenMessage`."""
    who = attrs.user.name
    if not attrs.resource_request:
        return f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = (f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope")
    return f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def forbidden(attrs: Attributes, reason: str) -> ApiError:
    """kube's `apierrors.NewForbidden(groupResource, name, forbiddenMessage: reason)`."""
    msg = forbidden_message(attrs) + (f": {reason}" if reason else "")
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not attrs.resource_request:
        return ApiError(403, "Forbidden", f"forbidden: {msg}", {})
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details: dict[str, Any] = {"group": attrs.api_group, "kind": attrs.resource}
    if attrs.name:
        details = {"name": attrs.name, **details}
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {msg}", details)


async def authenticate(authenticator: Authenticator, request: web.Request) -> UserInfo:
    user = await authenticator.authenticate(credentials(request))
    if user is None:
        raise unauthorized()
    request[USER] = user
    return user


def authorize(authorizer: Authorizer, request: web.Request, user: UserInfo,
              t: Target | None) -> None:
    attrs = request_attributes(request, user, t)
    decision = authorizer.authorize(attrs)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)

