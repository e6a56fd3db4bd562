"""The filters in front of every handler (kube-apiserver's `DefaultBuildHandlerChain`):
authentication, impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`: `kubectl
--as`), then authorization of what the request asks (`request_attributes`, kube's
`RequestInfoFactory`), each refusing with kube's Status: 401 `Unauthorized`, 403 `Forbidden`
with kube's message (`User "jane" cannot list resource "pods" in API group "" in the
namespace "default"`)."""
from __future__ import annotations

import weakref
from typing import Any
from urllib.parse import unquote

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


# A connection's client certificate never changes: decode it once per TLS session, not on
# every request (kube-apiserver likewise caches what its x509 authenticator found).
_PEER_CERTS: weakref.WeakKeyDictionary[Any, dict[str, Any] | None] = weakref.WeakKeyDictionary()


def peer_certificate(ssl_object: Any) -> dict[str, Any] | None:
    try:
        return _PEER_CERTS[ssl_object]
    except KeyError:
        peer = _PEER_CERTS[ssl_object] = ssl_object.getpeercert() or None
        return peer


def credentials(request: web.Request) -> Credentials:
    peer: dict[str, Any] | None = None
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is not None:
        peer = peer_certificate(ssl_object)
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
    verb = resource_verb(request.method, t, watch=watch)
    name = t.name or ""
    if not name and verb in ("list", "watch"):
        name = selected_name(request.query.get("fieldSelector", ""))
    return Attributes(user=user, verb=verb, namespace=t.namespace or "", api_group=t.rt.group,
                      api_version=t.rt.version, resource=t.rt.plural, subresource=t.sub or "",
                      name=name)


def selected_name(field_selector: str) -> str:
    """The one name a list or watch selects (`fieldSelector=metadata.name=x`): kube's
    RequestInfo names such a request, so rules with resourceNames and the Node authorizer
    can allow watching one object."""
    for requirement in field_selector.split(","):
        key, op, value = requirement.partition("==") if "==" in requirement else requirement.partition("=")
        if op and key.strip() == "metadata.name" and not key.endswith("!"):
            value = value.strip()
            return value if value and value not in (".", "..") and not any(c in value for c in "/%") else ""
    return ""


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


IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_EXTRA = "Impersonate-Extra-"
SA_PREFIX = "system:serviceaccount:"


def _impersonation_checks(name: str, uid: str, groups: list[str],
                          extra: dict[str, list[str]]) -> list[tuple[str, str, str, str, str]]:
    """(group, resource, subresource, namespace, name) the caller must `impersonate`."""
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        namespace, sa = name[len(SA_PREFIX):].split(":")
        checks = [("", "serviceaccounts", "", namespace, sa)]
    else:
        checks = [("", "users", "", "", name)]
    checks += [("", "groups", "", "", g) for g in groups]
    checks += [("authentication.k8s.io", "userextras", key, "", v) for key, values in extra.items()
               for v in values]
    if uid:
        checks.append(("authentication.k8s.io", "uids", "", "", uid))
    return checks


def impersonated_user(name: str, uid: str, groups: list[str], extra: dict[str, list[str]]) -> UserInfo:
    """The user acted as: the groups asked for, a ServiceAccount's groups, and the group every
    authenticated (or anonymous) request has, as kube's impersonation filter builds it."""
    all_groups = list(groups)
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        namespace = name[len(SA_PREFIX):].split(":")[0]
        all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    implied = "system:unauthenticated" if name == "system:anonymous" else "system:authenticated"
    if implied not in all_groups:
        all_groups.append(implied)
    return UserInfo(name, uid, tuple(dict.fromkeys(all_groups)),
                    tuple(sorted((k, tuple(v)) for k, v in extra.items())))


def impersonate(authorizer: Authorizer, request: web.Request, user: UserInfo) -> UserInfo:
    """kube's WithImpersonation: `Impersonate-*` headers act as another user, each part of it
    allowed by the `impersonate` verb; the request goes on as that user."""
    headers = request.headers
    name = headers.get(IMPERSONATE_USER, "")
    uid = headers.get(IMPERSONATE_UID, "")
    groups = headers.getall(IMPERSONATE_GROUP, [])
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(IMPERSONATE_EXTRA.lower()):
            extra.setdefault(unquote(key[len(IMPERSONATE_EXTRA):]).lower(), []).append(value)
    if not (name or uid or groups or extra):
        return user
    if not name:
        raise ApiError(400, "BadRequest", "requested impersonation of groups, extra or uid "
                       "without impersonating a user")
    for group, resource, sub, namespace, what in _impersonation_checks(name, uid, groups, extra):
        attrs = Attributes(user=user, verb="impersonate", namespace=namespace, api_group=group,
                           resource=resource, subresource=sub, name=what)
        decision = authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)
    acting = impersonated_user(name, uid, groups, extra)
    request[USER] = acting
    return acting


def authorize(authorizer: Authorizer, request: web.Request, user: UserInfo,
              t: Target | None) -> None:
    attrs = request_attributes(request, user, t)
    decision = authorizer.authorize(attrs)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)

