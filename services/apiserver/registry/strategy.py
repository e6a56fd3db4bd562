"""What the server does to an object of any kind before it is stored (kube-apiserver's
create/update strategies): metadata the server owns, the kind's defaults, the rules of the
status subresource, and the checks of `validation.py` at their places. The kinds differ only
in what `kubecore.api.resources.ResourceType` gives: `default`, `prepare_create` (a Job's
generated selector), `validate`, `canonicalize`, `has_status`, `graceful_delete`, the
Service's carried-over allocations and the DaemonSet's template generation."""
from __future__ import annotations

import copy
from typing import Any

from kubecore.api import resources as R
from kubecore.api.defaults import default_service_status
from kubecore.api.errors import ApiError, Cause, bad_request, conflict, invalid
from kubecore.api.patch import (
    PatchError,
    PatchTooLarge,
    field_set,
    json_patch,
    merge_patch,
    server_side_apply,
    strategic_merge_patch,
)
from kubecore.api.types import Obj
from services.apiserver.registry.meta import new_uid, now_rfc3339, random_suffix
from services.apiserver.registry.validation import check_object, check_shape, check_type

# Written by the server only: what a client sends for these on create is dropped, and an
# update keeps the stored values.
_DROPPED_ON_CREATE = ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "managedFields", "selfLink")
_KEPT_ON_UPDATE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "generation", "namespace", "name")


# --- create ------------------------------------------------------------------------------------

def _create_metadata(rt: R.ResourceType, obj: Obj, namespace: str | None) -> Obj:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    if rt.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        meta["namespace"] = namespace or body_ns
    else:
        meta.pop("namespace", None)
    if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        meta["name"] = meta["generateName"] + random_suffix()
    return meta


def prepare_create(rt: R.ResourceType, obj: Obj, namespace: str | None) -> Obj:
    """The object to store for a create of `obj` in `namespace` (changed in place)."""
    check_type(rt, obj)
    meta = _create_metadata(rt, obj, namespace)
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    check_shape(rt, obj, name or "")
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    for server_owned in _DROPPED_ON_CREATE:
        meta.pop(server_owned, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    rt.convert(obj)
    if rt.kind == "Service":
        obj.pop("status", None)  # a Service starts with no load balancer (kube's PrepareForCreate)
    if "spec" in obj or rt.kind in ("Deployment", "ReplicaSet"):
        meta["generation"] = 1
    rt.default(obj)
    if rt.kind == "DaemonSet":
        R.daemonset_template_generation(obj, None)
    rt.prepare_create(obj)
    _drop_empty_lists(meta)
    check_object(rt, obj, None, name or "")
    rt.canonicalize(obj)
    return obj


# --- update ------------------------------------------------------------------------------------

def _check_update_identity(rt: R.ResourceType, meta: Any, old: Obj, name: str) -> Obj:
    """The new metadata names the stored object: its name, uid and namespace, if given."""
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    if meta.get("name") not in (None, name):
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name "
                          f"on the URL ({name})")
    if meta.get("uid") and meta["uid"] != old["metadata"].get("uid"):
        raise conflict(rt.plural, name, f"Precondition failed: UID in precondition: {meta['uid']}, "
                       f"UID in object meta: {old['metadata'].get('uid')}", rt.group)
    if rt.namespaced and meta.get("namespace") not in (None, old["metadata"].get("namespace")):
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    return meta


def _status_update(new: Obj, old: Obj) -> Obj:
    """A /status write: the stored object with the new status (none if the body has none)."""
    result = copy.deepcopy(old)
    result["status"] = new.get("status", old.get("status"))
    if "status" not in new:
        result.pop("status", None)
    return result


def _keep_server_owned(meta: Obj, omd: Obj) -> None:
    for owned in _KEPT_ON_UPDATE:
        if owned in omd:
            meta[owned] = omd[owned]
        else:
            meta.pop(owned, None)
    # managedFields left out keep the old entries; an empty list clears them
    if "managedFields" not in meta and omd.get("managedFields"):
        meta["managedFields"] = copy.deepcopy(omd["managedFields"])
    elif not meta.get("managedFields"):
        meta.pop("managedFields", None)


def _main_update(rt: R.ResourceType, new: Obj, meta: Obj, old: Obj) -> Obj:
    """A write of the main resource: the stored status, the server's metadata, defaults, and
    a new generation when the spec changed."""
    new["apiVersion"], new["kind"] = rt.api_version, rt.kind
    if rt.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    omd = old["metadata"]
    _keep_server_owned(meta, omd)
    if rt.kind == "Service":
        R.carry_over_service_allocations(new, old)
    rt.convert(new)
    rt.default(new)
    if rt.kind == "DaemonSet":
        R.daemonset_template_generation(new, old)
    _drop_empty_lists(meta)
    if "generation" in omd and _spec(new) != _spec(old):
        meta["generation"] = omd["generation"] + 1
    return new


def prepare_update(rt: R.ResourceType, new: Obj, old: Obj, *, status_only: bool) -> Obj:
    """The object to store when `new` replaces `old` (main resource or /status)."""
    check_type(rt, new)
    name = old["metadata"]["name"]
    meta = _check_update_identity(rt, new.get("metadata"), old, name)
    check_shape(rt, new, name)
    new = _status_update(new, old) if status_only else _main_update(rt, new, meta, old)
    if status_only and rt.kind == "Service":
        default_service_status(new)
    check_object(rt, new, old, name, status_only=status_only)
    if not status_only:
        rt.canonicalize(new)
    return new


def _drop_empty_lists(meta: Obj) -> None:
    """An emptied list of finalizers or owner references is no list (Go's omitempty): a
    patch that removes the last one leaves the object as if it never had any."""
    for name in ("finalizers", "ownerReferences"):
        if meta.get(name) == []:
            del meta[name]


def _spec(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


# --- patches -----------------------------------------------------------------------------------

def apply_patch(rt: R.ResourceType, current: Obj, patch: Any, ctype: str) -> Obj:
    """`current` with a JSON, merge or strategic merge patch applied (by content type)."""
    try:
        if ctype == "application/json-patch+json":
            result = json_patch(current, patch)
        elif not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        elif ctype == "application/merge-patch+json":
            result = merge_patch(current, patch)
        else:  # strategic merge patch, and server-side apply merged the same way
            result = strategic_merge_patch(current, patch, rt.kind)
    except PatchTooLarge as exc:
        raise ApiError(413, "RequestEntityTooLarge", str(exc)) from exc
    except PatchError as exc:
        raise invalid(rt.kind, current["metadata"]["name"], [Cause("", str(exc))], rt.group) from exc
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce a JSON object")
    return result


# --- server-side apply: who applied which fields ------------------------------------------

def applied_fields(obj: Obj, manager: str) -> Obj | None:
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return entry.get("fieldsV1") or {}
    return None


def record_apply(rt: R.ResourceType, obj: Obj, manager: str, applied: Obj) -> None:
    """Remember in metadata.managedFields which fields `manager` applied."""
    entry = {"manager": manager, "operation": "Apply", "apiVersion": rt.api_version,
             "time": now_rfc3339(), "fieldsType": "FieldsV1",
             "fieldsV1": field_set(applied, rt.kind)}
    meta = obj.setdefault("metadata", {})
    others = [e for e in meta.get("managedFields") or []
              if not (e.get("manager") == manager and e.get("operation") == "Apply")]
    meta["managedFields"] = others + [entry]


def apply_configuration(rt: R.ResourceType, current: Obj, applied: Obj, manager: str) -> Obj:
    """`current` after `manager` applies `applied` (a server-side apply PATCH)."""
    try:
        new = server_side_apply(current, applied, applied_fields(current, manager), rt.kind)
    except PatchError as exc:
        raise invalid(rt.kind, current["metadata"]["name"], [Cause("", str(exc))], rt.group) from exc
    record_apply(rt, new, manager, applied)
    return new
