"""The three patch formats of the Kubernetes API, plus the diff kubectl apply sends.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced.
- JSON patch (RFC 6902): through the `jsonpatch` library.
- Strategic merge patch: lists of maps merge by a per-field key (Service ports by
  `port`, containers by `name`, ...) and the `$patch`, `$setElementOrder/`,
  `$deleteFromPrimitiveList/` and `$retainKeys` directives apply, as in
  apimachinery's strategicpatch package for the fields this project serves.
"""
from __future__ import annotations

import copy
from typing import Any

import jsonpatch

Obj = dict[str, Any]


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
