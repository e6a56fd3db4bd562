"""HTTP handlers of the resource API: thin functions from a request to a call of the
generic registry store (`registry.store.Store`) and its answer. They parse (path, body,
query), pick the registry call, and present the result (Tables, status codes); what a write
does is the registry's."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, method_not_allowed, no_such_path, not_found
from kubecore.api.types import Obj
from services.apiserver.authn import tokenrequest
from services.apiserver.endpoints import reviews, table_responses
from services.apiserver.endpoints.context import ApiState, WatchedCollection
from services.apiserver.endpoints.filters import USER
from services.apiserver.endpoints.requests import (
    PATCH_TYPES,
    Selectors,
    Target,
    content_type,
    decode_body,
    decode_object,
    dry_run,
    field_validation,
    flag,
    json_response,
    read_body,
)
from services.apiserver.endpoints.watch import serve_watch
from services.apiserver.registry import deletion, subresources
from services.apiserver.registry.interfaces import AdmissionRequest
from services.apiserver.storage import paging

Handler = Callable[[ApiState, web.Request, Target], Awaitable[web.StreamResponse]]


def _list_response(rt: R.ResourceType, items: list[Obj], rev: int, cont: str = "",
                   remaining: int | None = None) -> Obj:
    meta: Obj = {"resourceVersion": str(rev)}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}


def present_list(request: web.Request, rt: R.ResourceType, lst: Obj) -> Obj:
    wanted = table_responses.negotiate(request)
    return table_responses.present_list(wanted, rt, lst) if wanted else lst


def present_object(request: web.Request, rt: R.ResourceType, obj: Obj) -> Obj:
    wanted = table_responses.negotiate(request)
    return table_responses.present_object(wanted, rt, obj) if wanted else obj


async def _raw_body(state: ApiState, request: web.Request) -> bytes:
    return await read_body(request, state.settings.max_body_bytes, state.settings.body_timeout)


async def _body(state: ApiState, request: web.Request) -> Obj:
    raw = await _raw_body(state, request)
    return decode_object(raw, content_type(request), state.settings.max_body_bytes)


# --- reads ----------------------------------------------------------------------------

async def get_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    obj = await state.storage.get(t.rt, t.namespace, t.name or "")
    return json_response(present_object(request, t.rt, obj))


async def watch(state: ApiState, request: web.Request, t: Target, sel: Selectors) -> web.StreamResponse:
    wanted = table_responses.negotiate(request)
    return await serve_watch(request, t, sel, state.caches[t.rt.plural], WatchedCollection(state, t),
                             bookmark_interval=state.settings.bookmark_interval,
                             render=table_responses.event_renderer(wanted, t.rt) if wanted else None)


async def list_objects(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    sel = Selectors(request, t.rt)
    if flag(request, "watch"):
        return await watch(state, request, t, sel)
    limit = paging.limit_param(request.query.get("limit"))
    token = request.query.get("continue", "")
    read = paging.list_read(request.query.get("resourceVersion", ""),
                            request.query.get("resourceVersionMatch", ""), token, limit)
    cache = state.caches[t.rt.plural]
    if read.cached and cache.ready.is_set():
        # As kube-apiserver: resourceVersion=0 ("any version") is served whole from the watch
        # cache, `limit` ignored and no continue, to spare etcd; continue tokens go to etcd.
        entries = sorted(cache.current(t.rt.key_prefix(t.namespace)),
                         key=lambda e: (e[0]["metadata"].get("namespace", ""), e[0]["metadata"]["name"]))
        lst = _list_response(t.rt, [o for o, _ in entries if sel.match(o)], cache.revision)
    else:
        page = await state.storage.list_page(t.rt, t.namespace, limit=limit, token=token or None,
                                             revision=read.revision,
                                             match=None if sel.empty else sel.match)
        if page.revision < read.not_older_than:
            raise paging.too_large(read.not_older_than, page.revision)
        lst = _list_response(t.rt, page.items, page.revision, page.continue_, page.remaining)
    return json_response(present_list(request, t.rt, lst))


# --- writes -----------------------------------------------------------------------------

async def create_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    body = await _body(state, request)
    created = await state.registry.create(t.rt, body, t.namespace, fields=field_validation(request),
                                          dry_run=dry_run(request), user=request[USER])
    return json_response(created, 201)


async def replace_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    body = await _body(state, request)
    obj = await state.registry.update(t.rt, t.namespace, t.name or "", body,
                                      status_only=t.sub == "status",
                                      fields=field_validation(request), dry_run=dry_run(request),
                                      user=request[USER])
    return json_response(obj)


async def patch_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    ctype = content_type(request)
    if ctype not in PATCH_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f'the server does not support the patch type '
                       f'"{ctype}"; supported: {", ".join(sorted(PATCH_TYPES))}')
    raw = await _raw_body(state, request)
    patch = decode_body(raw, ctype, state.settings.max_body_bytes)
    obj, created = await state.registry.patch(
        t.rt, t.namespace, t.name or "", patch, ctype, status_only=t.sub == "status",
        manager=request.query.get("fieldManager"), fields=field_validation(request),
        dry_run=dry_run(request), user=request[USER])
    return json_response(obj, 201 if created else 200)


async def _delete_options(state: ApiState, request: web.Request) -> Obj:
    body = None
    if request.can_read_body:
        raw = await _raw_body(state, request)
        if raw.strip():
            body = decode_object(raw, content_type(request), state.settings.max_body_bytes)
    return deletion.read_options(request.query, body)


async def delete_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    opts = await _delete_options(state, request)
    obj = await state.registry.delete(t.rt, t.namespace, t.name or "", opts, user=request[USER])
    # kube answers 202 for an object left in place only when orphanDependents=false was asked
    kept = opts.get("orphanDependents") is False and bool(obj["metadata"].get("deletionTimestamp"))
    return json_response(obj, 202 if kept and not deletion.dry_run(opts) else 200)


async def delete_collection(state: ApiState, request: web.Request, t: Target) -> web.Response:
    sel = Selectors(request, t.rt)
    opts = await _delete_options(state, request)
    deleted = await state.registry.delete_collection(t.rt, t.namespace, sel.match, opts,
                                                     user=request[USER])
    return json_response(_list_response(t.rt, deleted, 0))


# --- pods/binding, scale, pods/log and pods/exec -----------------------------------------

async def bind_pod(state: ApiState, request: web.Request, t: Target) -> web.Response:
    binding = await _body(state, request)
    status = await subresources.bind(state.storage, t.rt, t.namespace, t.name or "", binding)
    return json_response(status, 201)


async def scale(state: ApiState, request: web.Request, t: Target) -> web.Response:
    if request.method == "GET":
        return json_response(await subresources.get_scale(state.storage, t.rt, t.namespace, t.name or ""))
    raw = await _raw_body(state, request)
    ctype = content_type(request)
    body = decode_body(raw, ctype, state.settings.max_body_bytes)
    return json_response(await subresources.write_scale(
        state.storage, t.rt, t.namespace, t.name or "", body,
        patch_type=ctype if request.method == "PATCH" else None))


async def service_account_token(state: ApiState, request: web.Request, t: Target) -> web.Response:
    """POST serviceaccounts/<name>/token: a TokenRequest, admitted as a CREATE of that
    subresource (so NodeRestriction-like plugins see it), answered and never stored."""
    body = await _body(state, request)
    namespace, name = t.namespace or "", t.name or ""
    user = request[USER]

    async def admit(token_request: Obj) -> None:
        await state.registry.admission.validate(AdmissionRequest(
            "CREATE", t.rt, namespace, name, "token", token_request, None, user, dry_run(request)))

    issuer = state.service_accounts
    answered, warnings = await tokenrequest.create_token(
        state.storage, issuer.signer, issuer.token_settings, namespace=namespace, name=name,
        body=body, admit=admit)
    field_validation(request).warnings.extend(warnings)
    return json_response(answered, 201)


async def node_proxy(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    return await state.nodes.serve(state.storage, request, t)


# --- dispatch ------------------------------------------------------------------------------------

# (subresource, method) -> handler, for a named object; None is the object itself
ROUTES: dict[tuple[str | None, str], Handler] = {
    (None, "GET"): get_object, (None, "PUT"): replace_object, (None, "PATCH"): patch_object,
    (None, "DELETE"): delete_object,
    ("status", "GET"): get_object, ("status", "PUT"): replace_object,
    ("status", "PATCH"): patch_object,
    ("binding", "POST"): bind_pod,
    ("token", "POST"): service_account_token,
    ("scale", "GET"): scale, ("scale", "PUT"): scale, ("scale", "PATCH"): scale,
}
_ROUTED_SUBRESOURCES = {sub for sub, _ in ROUTES if sub is not None}


async def dispatch_collection(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    m = request.method
    if m == "GET":
        return await list_objects(state, request, t)
    if m == "POST":
        if t.rt.namespaced and t.namespace is None:
            raise method_not_allowed("create needs a namespace: POST to "
                                     f"/.../namespaces/<namespace>/{t.rt.plural}")
        return await create_object(state, request, t)
    if m == "DELETE":
        return await delete_collection(state, request, t)
    raise method_not_allowed()


async def dispatch(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    if t.rt in R.REVIEWS:
        return await reviews.create_review(state, request, t)
    if t.name is None:
        return await dispatch_collection(state, request, t)
    if t.rt.namespaced and t.namespace is None:
        raise not_found(t.rt.plural, t.name, t.rt.group)
    if t.sub is not None and t.sub not in t.rt.subresources:
        raise no_such_path()  # no route for it, as go-restful answers
    if t.sub is not None and t.sub not in _ROUTED_SUBRESOURCES:
        return await node_proxy(state, request, t)
    handler = ROUTES.get((t.sub, request.method))
    if handler is None:
        raise method_not_allowed()
    return await handler(state, request, t)
