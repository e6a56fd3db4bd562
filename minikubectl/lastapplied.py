"""Client-side apply as kubectl does it: the last-applied annotation and the three-way patch.

kubectl stores the applied manifest in the `kubectl.kubernetes.io/last-applied-configuration`
annotation. The next apply sends a strategic merge patch made of
- what the manifest changes or adds compared with the live object, and
- what the manifest dropped compared with the last applied one (`null`s and
  `$patch: delete` list items),
so fields that others (the API server, controllers) set on the live object stay. The
annotation text is JSON as Go's encoder writes it, so objects applied by kubectl and by
minikubectl read the same to both.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from kubecore.api.patch import merge_key_for
from kubecore.api.types import Obj

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def go_json(value: Any) -> str:
    """json.Marshal's text: sorted keys, no spaces, HTML characters escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def modified_configuration(obj: Obj) -> Obj:
    """The object to send: the manifest, with the annotation holding the manifest itself
    (without any earlier annotation value, with an `annotations` map, as kubectl's)."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    text = go_json(out) + "\n"
    meta["annotations"] = {**annotations, LAST_APPLIED: text}
    return out


def last_applied(current: Obj) -> Obj | None:
    """The configuration last applied to a live object, if it carries a readable one."""
    text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def three_way_patch(original: Obj | None, modified: Obj, current: Obj, kind: str) -> Obj:
    """The strategic merge patch kubectl apply sends; `{}` means the object is unchanged."""
    changes = _diff_maps(current, modified, kind, (), deletions=False)
    removals = _diff_maps(original or {}, modified, kind, (), deletions=True)
    patch = _merge_patches(removals, changes, kind, ())
    _add_element_orders(patch, modified, kind, ())
    return patch


def _diff_maps(old: Obj, new: Obj, kind: str, path: tuple[str, ...], *, deletions: bool) -> Obj:
    """With deletions=False: what `new` adds or changes over `old`; with True: what `old`
    had that `new` dropped."""
    patch: Obj = {}
    if deletions:
        for key in old:
            if key not in new:
                patch[key] = None
    for key, value in new.items():
        if key not in old:
            if not deletions:
                patch[key] = copy.deepcopy(value)
            continue
        sub = _diff_values(old[key], value, kind, path + (key,), deletions=deletions)
        if sub is not _SAME:
            patch[key] = sub
    return patch


_SAME = object()


def _diff_values(old: Any, new: Any, kind: str, path: tuple[str, ...], *, deletions: bool) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        sub = _diff_maps(old, new, kind, path, deletions=deletions)
        return sub if sub else _SAME
    if isinstance(old, list) and isinstance(new, list):
        mkey = _list_merge_key(old, new, kind, path)
        if mkey is not None:
            items = _diff_keyed_lists(old, new, mkey, kind, path, deletions=deletions)
            return items if items else _SAME
    if deletions or old == new:
        return _SAME
    return copy.deepcopy(new)


def _list_merge_key(old: list, new: list, kind: str, path: tuple[str, ...]) -> str | None:
    mkey = merge_key_for(kind, path)
    if mkey is None:
        return None
    if all(isinstance(x, dict) and mkey in x for x in old + new):
        return mkey
    return None


def _diff_keyed_lists(old: list, new: list, mkey: str, kind: str, path: tuple[str, ...], *,
                      deletions: bool) -> list:
    old_by_key = {x[mkey]: x for x in old}
    new_keys = {x[mkey] for x in new}
    out: list = []
    if deletions:
        out += [{mkey: x[mkey], "$patch": "delete"} for x in old if x[mkey] not in new_keys]
    for item in new:
        before = old_by_key.get(item[mkey])
        if before is None:
            if not deletions:
                out.append(copy.deepcopy(item))
            continue
        sub = _diff_maps(before, item, kind, path, deletions=deletions)
        if sub:
            out.append({mkey: item[mkey], **sub})
    return out


def _merge_patches(base: Obj, over: Obj, kind: str, path: tuple[str, ...]) -> Obj:
    """Both patches in one: `over` wins on the same field; keyed list items combine."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = out.get(key)
        if isinstance(here, dict) and isinstance(value, dict):
            out[key] = _merge_patches(here, value, kind, path + (key,))
        elif isinstance(here, list) and isinstance(value, list):
            mkey = merge_key_for(kind, path + (key,))
            if mkey is not None and all(isinstance(x, dict) and mkey in x for x in here + value):
                out[key] = _merge_keyed_items(here, value, mkey, kind, path + (key,))
            else:
                out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_keyed_items(base: list, over: list, mkey: str, kind: str, path: tuple[str, ...]) -> list:
    out = [copy.deepcopy(x) for x in base]
    for item in over:
        idx = next((i for i, x in enumerate(out) if x[mkey] == item[mkey]), None)
        if idx is None:
            out.append(copy.deepcopy(item))
        else:
            out[idx] = _merge_patches(out[idx], item, kind, path)
    return out


def _add_element_orders(patch: Obj, modified: Obj, kind: str, path: tuple[str, ...]) -> None:
    """`$setElementOrder/<list>` next to each keyed list the patch touches, so the merged
    list keeps the manifest's order (kubectl sends the same directive)."""
    for key, value in list(patch.items()):
        if key.startswith("$"):
            continue
        mod = modified.get(key) if isinstance(modified, dict) else None
        if isinstance(value, dict) and isinstance(mod, dict):
            _add_element_orders(value, mod, kind, path + (key,))
        elif isinstance(value, list) and isinstance(mod, list):
            mkey = merge_key_for(kind, path + (key,))
            if mkey is None or not all(isinstance(x, dict) and mkey in x for x in mod):
                continue
            if not all(isinstance(x, dict) and mkey in x for x in value):
                continue
            patch[f"$setElementOrder/{key}"] = [{mkey: x[mkey]} for x in mod]
            by_key = {x[mkey]: x for x in mod}
            for item in value:
                if item.get("$patch") != "delete" and item[mkey] in by_key:
                    _add_element_orders(item, by_key[item[mkey]], kind, path + (key,))
