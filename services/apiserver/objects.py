"""What the server does to an object before it is stored: metadata the server owns,
defaults, validation, and the rules of the status subresource."""
from __future__ import annotations

import copy
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import Cause, bad_request, invalid
from kubecore.api.models import shape_causes
from kubecore.api.patch import PatchError, field_set, server_side_apply
from kubecore.api.types import Obj

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # as apimachinery's rand.String: no vowels


class _Stamp:
    """The last second now_rfc3339 formatted, and its text."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: tuple[int, str] = (-1, "")


_stamp = _Stamp()


def format_rfc3339(t: datetime) -> str:
    """A time in whole seconds, as Kubernetes writes it (`2024-01-01T12:00:00Z`)."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    """The time now, formatted once per second."""
    second = int(time.time())
    if _stamp.value[0] != second:
        _stamp.value = (second, format_rfc3339(datetime.fromtimestamp(second, UTC)))
    return _stamp.value[1]


def new_uid() -> str:
    """A random (version 4) UUID in its text form; what str(uuid.uuid4()) gives, cheaper."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_rfc3339(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_NAME_CHARS) for _ in range(n))


def check_type(rt: R.ResourceType, obj: Obj) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version is not None and api_version != rt.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the "
                          f"expected API version ({rt.api_version})")
    if kind is not None and kind != rt.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                          f"({rt.kind})")


def _shape(rt: R.ResourceType, obj: Obj, name: str) -> None:
    causes = [Cause(f, m, "FieldValueTypeInvalid") for f, m in shape_causes(rt.model, obj)]
    if causes:
        raise invalid(rt.kind, name, causes, rt.group)


def prepare_create(rt: R.ResourceType, obj: Obj, namespace: str | None) -> Obj:
    check_type(rt, obj)
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
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    _shape(rt, obj, name or "")
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    for server_owned in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "managedFields", "selfLink"):
        meta.pop(server_owned, None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    if "spec" in obj or rt.kind in ("Deployment", "ReplicaSet"):
        meta["generation"] = 1
    rt.default(obj)
    _drop_empty_lists(meta)
    causes = R.metadata_causes(obj, rt) + rt.validate(obj, None)
    if causes:
        raise invalid(rt.kind, name or "", causes, rt.group)
    return obj


def prepare_update(rt: R.ResourceType, new: Obj, old: Obj, *, status_only: bool) -> Obj:
    """The object to store when `new` replaces `old` (main resource or /status)."""
    check_type(rt, new)
    name = old["metadata"]["name"]
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    if meta.get("name") not in (None, name):
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name "
                          f"on the URL ({name})")
    if meta.get("uid") and meta["uid"] != old["metadata"].get("uid"):
        from kubecore.api.errors import conflict

        raise conflict(rt.plural, name, f"Precondition failed: UID in precondition: {meta['uid']}, "
                       f"UID in object meta: {old['metadata'].get('uid')}", rt.group)
    if rt.namespaced and meta.get("namespace") not in (None, old["metadata"].get("namespace")):
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    _shape(rt, new, name)
    if status_only:
        result = copy.deepcopy(old)
        result["status"] = new.get("status", old.get("status"))
        if "status" not in new:
            result.pop("status", None)
        new = result
    else:
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if rt.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        omd = old["metadata"]
        for owned in ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "namespace", "name"):
            if owned in omd:
                meta[owned] = omd[owned]
            else:
                meta.pop(owned, None)
        # managedFields left out keep the old entries; an empty list clears them
        if "managedFields" not in meta and omd.get("managedFields"):
            meta["managedFields"] = copy.deepcopy(omd["managedFields"])
        elif not meta.get("managedFields"):
            meta.pop("managedFields", None)
        if rt.kind == "Service":
            R.carry_over_service_allocations(new, old)
        rt.default(new)
        _drop_empty_lists(meta)
        if "generation" in omd and _spec(new) != _spec(old):
            meta["generation"] = omd["generation"] + 1
    # A status write keeps the stored spec, so its rules are not checked again (kube-apiserver's
    # status strategies validate the status only): an object stored before a rule existed can
    # still have its status written by its controller.
    causes = R.metadata_causes(new, rt) + ([] if status_only else rt.validate(new, old))
    if causes:
        raise invalid(rt.kind, name, causes, rt.group)
    return new


def _drop_empty_lists(meta: Obj) -> None:
    """An emptied list of finalizers or owner references is no list (Go's omitempty): a
    patch that removes the last one leaves the object as if it never had any."""
    for name in ("finalizers", "ownerReferences"):
        if meta.get(name) == []:
            del meta[name]


def _spec(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


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
