"""ObjectMeta rules shared by every kind (apimachinery's ValidateObjectMeta) and label maps
(ValidateLabels), which selectors and node selectors use too."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj, ObjectMeta

MAX_ANNOTATIONS_BYTES = 256 * 1024


class NamedKind(Protocol):
    """What metadata validation needs of a kind: the rule its names follow."""

    @property
    def name_rule(self) -> Callable[[str], list[str]]: ...


def metadata_causes(obj: Obj, rt: NamedKind) -> list[Cause]:
    meta: ObjectMeta = obj.get("metadata") or {}
    return [*_name_causes(meta.get("name"), rt.name_rule),
            *label_map_causes("metadata.labels", meta.get("labels")),
            *_annotation_causes(meta.get("annotations") or {})]


def _name_causes(name: Any, name_rule: Callable[[str], list[str]]) -> list[Cause]:
    if not name:
        return [Cause("metadata.name", "Required value: name or generateName is required",
                      "FieldValueRequired")]
    return [Cause("metadata.name", f"Invalid value: {f.go_quote(str(name))}: {msg}") for msg in name_rule(name)]


def _annotation_causes(annotations: Mapping[str, str]) -> list[Cause]:
    causes = [Cause("metadata.annotations", f'Invalid value: "{key}": {msg}')
              for key in annotations for msg in f.label_key_errors(key)]
    if sum(len(k) + len(val) for k, val in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        causes.append(Cause("metadata.annotations", "Too long: must have at most 262144 bytes",
                            "FieldValueTooLong"))
    return causes


def label_map_causes(path: str, labels: Mapping[str, Any] | None) -> list[Cause]:
    """Each key a qualified name, each value a label value (labels, selectors, node selectors)."""
    causes: list[Cause] = []
    for key, value in (labels or {}).items():
        causes += [Cause(path, f'Invalid value: "{key}": {msg}') for msg in f.label_key_errors(key)]
        causes += [Cause(path, f'Invalid value: "{value}": {msg}') for msg in f.label_value_errors(value)]
    return causes


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector_causes(path: str, selector: Any) -> list[Cause]:
    """apimachinery's ValidateLabelSelector: matchLabels as labels, and each requirement's
    operator, values and key."""
    if not isinstance(selector, dict):
        return []
    causes = label_map_causes(f"{path}.matchLabels", selector.get("matchLabels"))
    for i, req in enumerate(selector.get("matchExpressions") or []):
        at, op, values = f"{path}.matchExpressions[{i}]", req.get("operator"), req.get("values") or []
        if op in ("In", "NotIn") and not values:
            causes.append(Cause(f"{at}.values", "Required value: must be specified when `operator` "
                                "is 'In' or 'NotIn'", "FieldValueRequired"))
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append(Cause(f"{at}.values", "Forbidden: may not be specified when `operator` is "
                                "'Exists' or 'DoesNotExist'", "FieldValueForbidden"))
        elif op not in SELECTOR_OPERATORS:
            causes.append(Cause(f"{at}.operator", f"Invalid value: {f.go_quote(str(op))}: not a valid "
                                "selector operator"))
        key = str(req.get("key", ""))
        causes += [Cause(f"{at}.key", f"Invalid value: {f.go_quote(key)}: {msg}")
                   for msg in f.qualified_name_errors(key)]
        for j, value in enumerate(values):
            causes += [Cause(f"{at}.values[{j}]", f"Invalid value: {f.go_quote(str(value))}: {msg}")
                       for msg in f.label_value_errors(value)]
    return causes
