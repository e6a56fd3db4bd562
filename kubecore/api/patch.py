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

from kubecore.api.types import Obj


class PatchError(ValueError):
    pass


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

def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.JsonPatch(ops).apply(copy.deepcopy(target))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, IndexError) as exc:
        raise PatchError(f"the JSON patch could not be applied: {exc}") from exc


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
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [x for x in result[field] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = path + (key,)
        cur = result.get(key)
        if isinstance(value, dict):
            result[key] = _smp_map(cur if isinstance(cur, dict) else {}, value, kind, sub)
        elif isinstance(value, list):
            result[key] = _smp_list(cur if isinstance(cur, list) else [], value, kind, sub)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, merge_key_for(kind, path + (field,)))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(original: list, patch: list, kind: str, path: tuple[str, ...]) -> list:
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
        if mkey not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {mkey}")
        idx = next((i for i, x in enumerate(result)
                    if isinstance(x, dict) and x.get(mkey) == item[mkey]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_smp_map({}, item, kind, path))
        else:
            result[idx] = _smp_map(result[idx], item, kind, path)
    return result


def _apply_order(items: list, order: list, mkey: str | None) -> list:
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
            name = fkey[2:]
            if name not in obj:
                continue
            if sub_before:
                # a map or list of which the manager set parts: those parts go, what
                # others added stays; emptied, it goes too
                _prune(obj[name], sub_before, sub_after, kind, path + (name,))
                if sub_after is None and not obj[name] and path + (name,) != ("metadata",):
                    del obj[name]
            elif sub_after is None:
                del obj[name]
        elif fkey.startswith("k:") and isinstance(obj, list):
            wanted = json.loads(fkey[2:])
            idx = next((i for i, x in enumerate(obj) if isinstance(x, dict)
                        and all(x.get(k) == v for k, v in wanted.items())), None)
            if idx is None:
                continue
            if sub_after is None:
                obj.pop(idx)
            else:
                _prune(obj[idx], sub_before, sub_after, kind, path)
        elif fkey.startswith("v:") and isinstance(obj, list) and sub_after is None:
            member = json.loads(fkey[2:])
            if member in obj:
                obj.remove(member)


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
