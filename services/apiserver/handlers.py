"""HTTP handlers of the resource API: thin functions from requests to storage calls."""
from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, Cause, bad_request, conflict, invalid, method_not_allowed, not_found
from kubecore.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from kubecore.api.selectors import SelectorError, fields_match, labels_match, parse_field_selector, parse_label_selector
from kubecore.api.types import Obj
from services.apiserver import deletion, objects, paging
from services.apiserver.requests import (
    PATCH_TYPES,
    Target,
    content_type,
    decode_body,
    decode_object,
    flag,
    json_response,
    read_body,
)
from services.apiserver.state import ApiState

log = logging.getLogger("apiserver")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


class Selectors:
    def __init__(self, request: web.Request, rt: R.ResourceType) -> None:
        try:
            self.labels = parse_label_selector(request.query.get("labelSelector"))
            self.fields = parse_field_selector(request.query.get("fieldSelector"),
                                               rt.field_getters, rt.plural)
        except SelectorError as exc:
            raise bad_request(f"unable to parse requirement: {exc}" if "parse" not in str(exc)
                              else str(exc)) from exc
        self.rt = rt
        self.empty = not self.labels and not self.fields

    def match(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.empty:
            return True
        return (labels_match(self.labels, (obj.get("metadata") or {}).get("labels"))
                and fields_match(self.fields, obj, self.rt.field_getters))


def body_metadata(body: Any) -> Obj:
    """The metadata of a request body, or a 400 when it is not an object."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    return meta


def body_resource_version(body: Any) -> str | None:
    rv = body_metadata(body).get("resourceVersion")
    if rv is not None and not isinstance(rv, str):
        raise bad_request("metadata.resourceVersion must be a string")
    return rv


def _list_response(rt: R.ResourceType, items: list[Obj], rev: int, cont: str = "",
                   remaining: int | None = None) -> Obj:
    meta: Obj = {"resourceVersion": str(rev)}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}


def _terminating(namespace: str) -> ApiError:
    return ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                    "because it is being terminated", {"name": namespace, "kind": "namespaces"})


async def ensure_namespace(state: ApiState, namespace: str) -> None:
    if namespace in state.terminating:
        raise _terminating(namespace)
    cache = state.caches["namespaces"]
    entry = cache.objects.get(R.NAMESPACES.key(None, namespace))
    if entry is None:
        # the cache may lag a namespace created a moment ago: ask etcd
        try:
            obj = await state.storage.get(R.NAMESPACES, None, namespace)
        except ApiError:
            raise not_found("namespaces", namespace) from None
    else:
        obj = entry[0]
    if (obj.get("status") or {}).get("phase") == "Terminating":
        raise _terminating(namespace)


# --- reads ----------------------------------------------------------------------------

async def get_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    obj = await state.storage.get(t.rt, t.namespace, t.name or "")
    return json_response(state.present_object(request, t.rt, obj))


async def list_objects(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    sel = Selectors(request, t.rt)
    if flag(request, "watch"):
        return await state.watch(request, t, sel)
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
    return json_response(state.present_list(request, t.rt, lst))


# --- create -----------------------------------------------------------------------------

async def create_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    raw = await read_body(request, state.settings.max_body_bytes)
    ctype = content_type(request)
    body = decode_object(raw, ctype)
    state.check_strict(request, t.rt, body)
    obj = objects.prepare_create(t.rt, body, t.namespace)
    if t.rt.namespaced:
        if not obj["metadata"].get("namespace"):
            raise bad_request("a namespace is required to create this object")
        await ensure_namespace(state, obj["metadata"]["namespace"])
    if request.query.get("dryRun") == "All":
        return json_response(obj, 201)
    created = await state.storage.create(t.rt, obj)
    return json_response(created, 201)


# --- update, patch ------------------------------------------------------------------------

def _check_rv(t: Target, wanted: str | None, current: Obj) -> None:
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        raise conflict(t.rt.plural, current["metadata"]["name"],
                       "the object has been modified; please apply your changes to the latest "
                       "version and try again", t.rt.group)


class _NoLongerReleased(Exception):
    """The stored object is not the released one any more (re-created, a finalizer back)."""


async def _finish_if_released(state: ApiState, t: Target, obj: Obj) -> Obj:
    """An object marked for deletion goes once its finalizers are gone: the same object
    (uid), still released, when the delete reaches etcd. Whoever changed it meanwhile went
    through here too, and finishes it if it is released then."""
    if not deletion.released(t.rt, obj):
        return obj
    uid = obj["metadata"].get("uid")

    def still_released(current: Obj) -> None:
        if current["metadata"].get("uid") != uid or not deletion.released(t.rt, current):
            raise _NoLongerReleased

    try:
        return await state.storage.delete(t.rt, t.namespace, obj["metadata"]["name"],
                                          still_released)
    except _NoLongerReleased:
        return obj
    except ApiError as exc:
        if exc.code != 404:
            raise
    return obj


async def replace_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    raw = await read_body(request, state.settings.max_body_bytes)
    body = decode_object(raw, content_type(request))
    state.check_strict(request, t.rt, body)
    status_only = t.sub == "status"
    wanted_rv = body_resource_version(body)

    async def mutate(current: Obj) -> Obj:
        _check_rv(t, wanted_rv, current)
        return objects.prepare_update(t.rt, copy.deepcopy(body), current, status_only=status_only)

    if request.query.get("dryRun") == "All":
        current = await state.storage.get(t.rt, t.namespace, t.name or "")
        return json_response(await mutate(current))
    obj, _ = await state.storage.update(t.rt, t.namespace, t.name or "", mutate)
    obj = await _finish_if_released(state, t, obj)
    return json_response(obj)


def apply_patch(rt: R.ResourceType, current: Obj, patch: Any, ctype: str) -> Obj:
    try:
        if ctype == "application/json-patch+json":
            result = json_patch(current, patch)
        elif not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        elif ctype == "application/merge-patch+json":
            result = merge_patch(current, patch)
        else:  # strategic merge patch, and server-side apply merged the same way
            result = strategic_merge_patch(current, patch, rt.kind)
    except PatchError as exc:
        raise invalid(rt.kind, current["metadata"]["name"], [Cause("", str(exc))], rt.group) from exc
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce a JSON object")
    return result


async def patch_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    ctype = content_type(request)
    if ctype not in PATCH_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f'the server does not support the patch type '
                       f'"{ctype}"; supported: {", ".join(sorted(PATCH_TYPES))}')
    raw = await read_body(request, state.settings.max_body_bytes)
    patch = decode_body(raw, ctype)
    status_only = t.sub == "status"
    apply = ctype == "application/apply-patch+yaml"
    if apply:
        if not request.query.get("fieldManager"):
            raise bad_request("PATCH apply requests need the fieldManager parameter")
        if not isinstance(patch, dict):
            raise bad_request("an apply patch must be a YAML or JSON object")
        state.check_strict(request, t.rt, patch)
    wanted_rv = body_resource_version(patch) if ctype != "application/json-patch+json" else None

    async def mutate(current: Obj) -> Obj:
        _check_rv(t, wanted_rv, current)
        if apply:
            new = objects.apply_configuration(t.rt, current, patch, request.query["fieldManager"])
        else:
            new = apply_patch(t.rt, current, patch, ctype)
        if not apply and ctype != "application/json-patch+json":
            state.check_strict(request, t.rt, new)
        return objects.prepare_update(t.rt, new, current, status_only=status_only)

    try:
        if request.query.get("dryRun") == "All":
            current = await state.storage.get(t.rt, t.namespace, t.name or "")
            return json_response(await mutate(current))
        obj, _ = await state.storage.update(t.rt, t.namespace, t.name or "", mutate)
    except ApiError as exc:
        if not (apply and exc.code == 404 and exc.reason == "NotFound" and not status_only):
            raise
        body = copy.deepcopy(patch)
        body.setdefault("metadata", {}).setdefault("name", t.name)
        obj = objects.prepare_create(t.rt, body, t.namespace)
        objects.record_apply(t.rt, obj, request.query["fieldManager"], patch)
        if t.rt.namespaced:
            await ensure_namespace(state, obj["metadata"]["namespace"])
        if request.query.get("dryRun") == "All":
            return json_response(obj, 201)
        return json_response(await state.storage.create(t.rt, obj), 201)
    obj = await _finish_if_released(state, t, obj)
    return json_response(obj)


# --- delete ----------------------------------------------------------------------------------

async def _delete_options(request: web.Request, state: ApiState) -> Obj:
    body = None
    if request.can_read_body:
        raw = await read_body(request, state.settings.max_body_bytes)
        if raw.strip():
            body = decode_object(raw, content_type(request))
    return deletion.read_options(request.query, body)


def _preconditions(t: Target, opts: Obj):
    pre = opts.get("preconditions") or {}

    def check(current: Obj) -> None:
        meta = current["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise conflict(t.rt.plural, meta["name"], f"Precondition failed: UID in precondition: "
                           f"{pre['uid']}, UID in object meta: {meta.get('uid')}", t.rt.group)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise conflict(t.rt.plural, meta["name"], "Precondition failed: ResourceVersion in "
                           f"precondition: {pre['resourceVersion']}, ResourceVersion in object "
                           f"meta: {meta.get('resourceVersion')}", t.rt.group)
    return check


async def delete_one(state: ApiState, t: Target, name: str, opts: Obj) -> Obj:
    check = _preconditions(t, opts)
    if t.rt is R.NAMESPACES:
        if name in PROTECTED_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace '
                           "may not be deleted", {"name": name, "kind": "namespaces"})
        return await state.terminate_namespace(name, check)

    async def mark(current: Obj) -> Obj | None:
        check(current)
        outcome = deletion.mark_for_deletion(t.rt, current, opts, datetime.now(UTC))
        if outcome is deletion.Outcome.DELETE:
            raise _DeleteNow()
        return current if outcome is deletion.Outcome.MARKED else None

    try:
        obj, _ = await state.storage.update(t.rt, t.namespace, name, mark)
        return obj
    except _DeleteNow:
        return await state.storage.delete(t.rt, t.namespace, name, check)


class _DeleteNow(Exception):
    pass


async def delete_object(state: ApiState, request: web.Request, t: Target) -> web.Response:
    opts = await _delete_options(request, state)
    if deletion.dry_run(opts):
        return json_response(await state.storage.get(t.rt, t.namespace, t.name or ""))
    obj = await delete_one(state, t, t.name or "", opts)
    # kube answers 202 for an object left in place only when orphanDependents=false was asked
    kept = opts.get("orphanDependents") is False and bool(obj["metadata"].get("deletionTimestamp"))
    return json_response(obj, 202 if kept else 200)


async def delete_collection(state: ApiState, request: web.Request, t: Target) -> web.Response:
    sel = Selectors(request, t.rt)
    opts = await _delete_options(request, state)
    objs, _ = await state.storage.list(t.rt, t.namespace)
    deleted = []
    for o in objs:
        if not sel.match(o):
            continue
        meta = o["metadata"]
        target = Target(t.rt, meta.get("namespace"), meta["name"], None)
        try:
            deleted.append(await delete_one(state, target, meta["name"], opts))
        except ApiError as exc:
            if exc.code != 404:
                raise
    return json_response(_list_response(t.rt, deleted, 0))


# --- pods/binding, scale ------------------------------------------------------------------------

async def bind_pod(state: ApiState, request: web.Request, t: Target) -> web.Response:
    raw = await read_body(request, state.settings.max_body_bytes)
    binding = decode_object(raw, content_type(request))
    target = binding.get("target") or {}
    node = target.get("name")
    if not isinstance(node, str) or not node:
        raise invalid("Binding", t.name or "", [Cause("target.name", "Required value",
                                                       "FieldValueRequired")])
    if target.get("kind", "Node") != "Node":
        raise invalid("Binding", t.name or "", [Cause("target.kind", "Invalid value: must be Node")])

    async def mutate(current: Obj) -> Obj:
        spec = current.setdefault("spec", {})
        if current["metadata"].get("deletionTimestamp"):
            raise conflict("pods", t.name or "", "the pod is being deleted")
        if spec.get("nodeName"):
            raise conflict("pods/binding", t.name or "",
                           f"pod {t.name} is already assigned to node \"{spec['nodeName']}\"")
        spec["nodeName"] = node
        status = current.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": objects.now_rfc3339()})
        status["conditions"] = conds
        return current

    await state.storage.update(t.rt, t.namespace, t.name or "", mutate)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Success", "code": 201}, 201)


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items()))}}


async def scale(state: ApiState, request: web.Request, t: Target) -> web.Response:
    if request.method == "GET":
        return json_response(_scale_of(await state.storage.get(t.rt, t.namespace, t.name or "")))
    raw = await read_body(request, state.settings.max_body_bytes)
    ctype = content_type(request)
    body = decode_body(raw, ctype)

    async def mutate(current: Obj) -> Obj:
        sc = _scale_of(current)
        new_scale = apply_patch(t.rt, sc, body, ctype) if request.method == "PATCH" else body
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", t.name or "", [Cause("spec.replicas", f"Invalid value: "
                                                        f"{replicas}: must be greater than or equal to 0")])
        _check_rv(t, body_resource_version(new_scale)
                  if request.method == "PUT" else None, current)
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        return objects.prepare_update(t.rt, new, current, status_only=False)

    obj, _ = await state.storage.update(t.rt, t.namespace, t.name or "", mutate)
    return json_response(_scale_of(obj))


# --- dispatch ------------------------------------------------------------------------------------

async def dispatch(state: ApiState, request: web.Request, t: Target) -> web.StreamResponse:
    m = request.method
    if t.name is None:
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
    if t.rt.namespaced and t.namespace is None:
        raise not_found(t.rt.plural, t.name, t.rt.group)
    if t.sub is None:
        handler = {"GET": get_object, "PUT": replace_object, "PATCH": patch_object,
                   "DELETE": delete_object}.get(m)
        if handler is None:
            raise method_not_allowed()
        return await handler(state, request, t)
    if t.sub not in t.rt.subresources:
        raise not_found(f"{t.rt.plural}/{t.sub}", t.name, t.rt.group)
    if t.sub == "status":
        if m == "GET":
            return await get_object(state, request, t)
        if m == "PUT":
            return await replace_object(state, request, t)
        if m == "PATCH":
            return await patch_object(state, request, t)
        raise method_not_allowed()
    if t.sub == "binding":
        if m != "POST":
            raise method_not_allowed()
        return await bind_pod(state, request, t)
    if t.sub == "scale":
        if m not in ("GET", "PUT", "PATCH"):
            raise method_not_allowed()
        return await scale(state, request, t)
    return await state.node_proxy(request, t)
