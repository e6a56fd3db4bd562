"""The three patch formats of the Kubernetes API, plus the diff kubectl apply sends.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced.
- JSON patch (RFC 6902): through the `jsonpatch` library.
- Strategic merge patch: lists of maps merge by a per-field key (Service ports by
  `port`, containers by `name`, ...) and the `$patch`, `$setElementOrder/`,
  `$deleteFromPrimitiveList/` and `$retainKeys` directives apply, as in
  apimachinery's strategicpatch package for the fields this project serves.
- Server-side apply, simplified: each manager's applied fields are remembered as a
  FieldsV1 set, so fields it stops applying are removed.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from kubecore.api import jsonwire
from kubecore.api.types import Obj


class PatchError(ValueError):
    pass


class PatchTooLarge(PatchError):
    """A patch over kube-apiserver's size bounds: a 413, not a 422."""


# --- JSON merge patch ----------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def create_merge_patch(original: Any, modified: Any) -> Any:
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return copy.deepcopy(modified)
    patch: Obj = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
        elif original[key] != value:
            if isinstance(original[key], dict) and isinstance(value, dict):
                patch[key] = create_merge_patch(original[key], value)
            else:
                patch[key] = copy.deepcopy(value)
    return patch


# --- JSON patch -------------------------------------------------------------------------

# kube-apiserver's bounds on a JSON patch (handlers/patch.go, server/config.go): how many
# operations, and how much `copy` operations may add (evanphx/json-patch's
# AccumulatedCopySizeLimit); each copy can double the object, so unbounded they exhaust memory.
MAX_JSON_PATCH_OPERATIONS = 10_000
MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902, one operation at a time, within kube's bounds and `jsonwire.MAX_DEPTH` (an
    `add` deep inside the object, repeated, would otherwise nest it without limit)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchTooLarge(f"Request entity too large: The allowed maximum operations in a JSON "
                            f"patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    doc = copy.deepcopy(target)
    depth, copied = jsonwire.nesting_depth(doc), 0
    try:
        for op in ops:
            value = _op_value(doc, op)
            if isinstance(op, dict) and op.get("op") == "copy":
                copied += len(jsonwire.dumps(value))
                if copied > MAX_JSON_PATCH_COPY_BYTES:
                    raise PatchError(f"Unable to complete the copy, the accumulated size increase "
                                     f"of copy is {copied}, exceeding the limit "
                                     f"{MAX_JSON_PATCH_COPY_BYTES}")
            if value is not None:
                depth = max(depth, len(jsonpatch.JsonPointer(op["path"]).parts)
                            + jsonwire.nesting_depth(value))
                if depth > jsonwire.MAX_DEPTH:
                    raise PatchError(f"the patched object would nest deeper than "
                                     f"{jsonwire.MAX_DEPTH} levels")
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, IndexError, AttributeError) as exc:
        raise PatchError(f"the JSON patch could not be applied: {exc}") from exc
    return doc


def _op_value(doc: Any, op: Any) -> Any:
    """The value an operation puts into the document (None for remove and test)."""
    kind = op.get("op") if isinstance(op, dict) else None
    if kind in ("add", "replace"):
        return op.get("value")
    if kind in ("copy", "move") and isinstance(op.get("from"), str):
        return jsonpatch.JsonPointer(op["from"]).resolve(doc)
    return None


# --- strategic merge patch ------------------------------------------------------------

# Merge keys by the field path with list indexes dropped; the last two names decide
# when the same field name means different things (Service vs container ports).
_MERGE_KEYS_BY_SUFFIX: dict[tuple[str, ...], str] = {
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("containers", "env"): "name",
    ("initContainers", "env"): "name",
    ("containers", "volumeMounts"): "mountPath",
    ("initContainers", "volumeMounts"): "mountPath",
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "hostAliases"): "ip",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("metadata", "ownerReferences"): "uid",
}
_SET_LISTS = {("metadata", "finalizers")}


def merge_key_for(kind: str, path: tuple[str, ...]) -> str | None:
    if kind == "Service" and path == ("spec", "ports"):
        return "port"
    return _MERGE_KEYS_BY_SUFFIX.get(path[-2:])


def strategic_merge_patch(original: Obj, patch: Obj, kind: str) -> Obj:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _smp_map(original if isinstance(original, dict) else {}, patch, kind, ())


def _smp_map(original: Obj, patch: Obj, kind: str, path: tuple[str, ...]) -> Obj:
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return {}
    result = copy.deepcopy(original)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            _delete_from_primitive_list(result, key.split("/", 1)[1], value)
        elif value is None:
            result.pop(key, None)
        else:
            result[key] = _smp_value(result.get(key), value, kind, path + (key,))
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, merge_key_for(kind, path + (field,)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _delete_from_primitive_list(result: Obj, field: str, values: Any) -> None:
    if isinstance(result.get(field), list) and isinstance(values, list):
        result[field] = [x for x in result[field] if x not in values]


def _smp_value(current: Any, value: Any, kind: str, path: tuple[str, ...]) -> Any:
    """One field of a patch merged into its current value: maps and lists merge, the rest replaces."""
    if isinstance(value, dict):
        return _smp_map(current if isinstance(current, dict) else {}, value, kind, path)
    if isinstance(value, list):
        return _smp_list(current if isinstance(current, list) else [], value, kind, path)
    return copy.deepcopy(value)


def _smp_list(original: list[Any], patch: list[Any], kind: str, path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if path[-2:] in _SET_LISTS:
        out = list(original)
        out += [x for x in patch if x not in out]
        return out
    mkey = merge_key_for(kind, path)
    if mkey is None or not all(isinstance(x, dict) for x in patch):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original)
    for item in patch:
        _smp_merge_item(result, item, mkey, kind, path)
    return result


def _smp_merge_item(result: list[Any], item: Obj, mkey: str, kind: str, path: tuple[str, ...]) -> None:
    """One item of a keyed list's patch: merged into the item with its key, appended, or deleted."""
    if mkey not in item:
        raise PatchError(f"map: {item} does not contain declared merge key: {mkey}")
    idx = next((i for i, x in enumerate(result)
                if isinstance(x, dict) and x.get(mkey) == item[mkey]), None)
    if item.get("$patch") == "delete":
        if idx is not None:
            result.pop(idx)
    elif idx is None:
        result.append(_smp_map({}, item, kind, path))
    else:
        result[idx] = _smp_map(result[idx], item, kind, path)


def _apply_order(items: list[Any], order: list[Any], mkey: str | None) -> list[Any]:
    if mkey is None:
        return items
    wanted = [o.get(mkey) if isinstance(o, dict) else o for o in order]
    keyed = {(x.get(mkey) if isinstance(x, dict) else x): x for x in items}
    ordered = [keyed[k] for k in wanted if k in keyed]
    rest = [x for x in items if (x.get(mkey) if isinstance(x, dict) else x) not in wanted]
    return ordered + rest


# --- server-side apply -------------------------------------------------------------------

def field_set(obj: Obj, kind: str, path: tuple[str, ...] = ()) -> Obj:
    """The fields `obj` sets, in the FieldsV1 form of `metadata.managedFields`:
    `f:<name>` for fields, `k:{"<merge key>":<value>}` for items of keyed lists,
    `v:<json>` for members of set lists. Keyed-list items carry the `.` marker."""
    out: Obj = {}
    for key, value in obj.items():
        if not path and key in ("apiVersion", "kind"):
            continue
        if path == ("metadata",) and key in ("name", "namespace"):
            continue
        out[f"f:{key}"] = _field_set_of_value(value, kind, path + (key,))
    return out


def _field_set_of_value(value: Any, kind: str, path: tuple[str, ...]) -> Obj:
    if isinstance(value, dict):
        return field_set(value, kind, path)
    if isinstance(value, list):
        mkey = merge_key_for(kind, path)
        if mkey and all(isinstance(x, dict) and mkey in x for x in value):
            return {_item_key(mkey, x[mkey]): {".": {}, **field_set(x, kind, path)} for x in value}
        if path[-2:] in _SET_LISTS:
            return {"v:" + json.dumps(x, separators=(",", ":")): {} for x in value}
    return {}


def _item_key(mkey: str, value: Any) -> str:
    return "k:" + json.dumps({mkey: value}, separators=(",", ":"))


def _prune(obj: Any, before: Obj, after: Obj | None, kind: str, path: tuple[str, ...]) -> None:
    """Drop from `obj` what the field set `before` has and `after` no longer has."""
    for fkey, sub_before in before.items():
        sub_after = None if after is None else after.get(fkey)
        if fkey.startswith("f:") and isinstance(obj, dict):
            _prune_field(obj, fkey[2:], sub_before, sub_after, kind, path)
        elif fkey.startswith("k:") and isinstance(obj, list):
            _prune_keyed_item(obj, json.loads(fkey[2:]), sub_before, sub_after, kind, path)
        elif fkey.startswith("v:") and isinstance(obj, list) and sub_after is None:
            member = json.loads(fkey[2:])
            if member in obj:
                obj.remove(member)


def _prune_field(obj: Obj, name: str, before: Obj, after: Obj | None, kind: str,
                 path: tuple[str, ...]) -> None:
    if name not in obj:
        return
    if before:
        # a map or list of which the manager set parts: those parts go, what
        # others added stays; emptied, it goes too
        _prune(obj[name], before, after, kind, path + (name,))
        if after is None and not obj[name] and path + (name,) != ("metadata",):
            del obj[name]
    elif after is None:
        del obj[name]


def _prune_keyed_item(items: list[Any], wanted: Obj, before: Obj, after: Obj | None, kind: str,
                      path: tuple[str, ...]) -> None:
    """The item of a keyed list named by `wanted` (its merge key and value): removed when the
    manager no longer applies it, else pruned inside."""
    idx = next((i for i, x in enumerate(items) if isinstance(x, dict)
                and all(x.get(k) == v for k, v in wanted.items())), None)
    if idx is None:
        return
    if after is None:
        items.pop(idx)
    else:
        _prune(items[idx], before, after, kind, path)


def server_side_apply(current: Obj, applied: Obj, previous: Obj | None, kind: str) -> Obj:
    """The object after a manager applies `applied`: fields the manager set last time
    (`previous`, its field set) and leaves out now are removed, then the applied
    configuration is merged in by the strategic merge keys.

    Simplified from kube-apiserver: fields are not shared between managers, so there
    are no conflicts; another writer's change to a field this manager applied is
    overwritten on the next apply, as with `--force-conflicts`."""
    if not isinstance(applied, dict):
        raise PatchError("an apply configuration must be an object")
    pruned = copy.deepcopy(current)
    if previous:
        _prune(pruned, previous, field_set(applied, kind), kind, ())
    return strategic_merge_patch(pruned, applied, kind)
