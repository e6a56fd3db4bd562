"""Label and field selectors: parsing and matching.

The grammar follows apimachinery's labels.Parse (`selectorparse`): comma-separated
requirements, each `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`,
`k` (exists) or `!k` (does not exist).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubecore.api.selectorparse import SelectorError as SelectorError  # re-exported
from kubecore.api.selectorparse import parse_requirements


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if self.op in ("gt", "lt"):
            return present and _compares(labels[self.key], self.op, self.values[0])
        raise AssertionError(self.op)


def _compares(label: str, op: str, bound: str) -> bool:
    """Gt/Lt: both sides as integers (a label that is not one never matches)."""
    try:
        value = int(label)
    except ValueError:
        return False
    return value > int(bound) if op == "gt" else value < int(bound)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a labelSelector query string as apimachinery's labels.Parse does (its grammar,
    its messages); raises SelectorError. One pass over the text, so the time a selector
    takes grows with its length only."""
    if text is None or not text.strip():
        return []
    return sorted((Requirement(key, op, values) for key, op, values in parse_requirements(text)),
                  key=lambda r: r.key)


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_match_labels(match_labels: Mapping[str, str]) -> list[Requirement]:
    return [Requirement(k, "=", (v,)) for k, v in sorted(match_labels.items())]


def selector_from_label_selector(sel: Mapping[str, Any] | None) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels + matchExpressions) as requirements."""
    if not sel:
        return []
    reqs = selector_from_match_labels(sel.get("matchLabels") or {})
    for expr in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[expr["operator"]]
        reqs.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return reqs


def format_selector(reqs: list[Requirement]) -> str:
    out = []
    for r in reqs:
        if r.op in ("=", "!="):
            out.append(f"{r.key}{r.op}{r.values[0]}")
        elif r.op in ("in", "notin"):
            out.append(f"{r.key} {r.op} ({','.join(r.values)})")
        elif r.op == "exists":
            out.append(r.key)
        else:
            out.append(f"!{r.key}")
    return ",".join(out)


# --- field selectors -------------------------------------------------------

FieldGetter = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


def parse_field_selector(text: str | None, supported: Mapping[str, FieldGetter],
                         resource: str) -> list[FieldRequirement]:
    if text is None or not text.strip():
        return []
    reqs = []
    for raw in _split_top_level(text):
        part = raw.strip()
        term = _split_term(part)
        if term is None:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        f, op, v = term
        if f not in supported:
            raise SelectorError(f'field label not supported: {f}')
        reqs.append(FieldRequirement(f, "=" if op == "==" else op, v))
    return reqs


_FIELD_NAME = re.compile(r"[A-Za-z0-9_.]+")


def _split_term(part: str) -> tuple[str, str, str] | None:
    """`field<op>value` at the first operator, as apimachinery's fields.splitTerm finds it
    (`!=`, `==`, `=`); one pass, whatever the selector holds."""
    at = part.find("=")
    if at < 0:
        return None
    if at > 0 and part[at - 1] == "!":
        name, op, value = part[:at - 1], "!=", part[at + 1:]
    elif part.startswith("==", at):
        name, op, value = part[:at], "==", part[at + 2:]
    else:
        name, op, value = part[:at], "=", part[at + 1:]
    name = name.rstrip()
    if not _FIELD_NAME.fullmatch(name):
        return None
    return name, op, value.strip()


def fields_match(reqs: list[FieldRequirement], obj: dict[str, Any],
                 supported: Mapping[str, FieldGetter]) -> bool:
    for r in reqs:
        actual = supported[r.field](obj) or ""
        if (actual == r.value) != (r.op == "="):
            return False
    return True
