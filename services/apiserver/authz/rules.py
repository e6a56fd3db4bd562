"""RBAC's PolicyRules as pure functions (kube's `rbac/v1/evaluation_helpers.go` and
`registry/rbac/validation/policy_comparator.go`): whether a rule allows a request, and whether
one set of rules covers another (privilege escalation prevention), with kube's text for the
rules missing.

A rule is compiled once (`Rule.of`) when the RBAC caches change, so matching a request is a
few set lookups: `*` in verbs, apiGroups or resources matches anything; a resource rule
`*/scale` matches the scale subresource of every resource; `resourceNames` narrows to those
names (and so never matches a list or a create, which carry no name); a non-resource URL
ending in `*` matches every path it prefixes.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.apiserver.authz import Attributes

ALL = "*"


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule, its lists as frozensets (and the URL prefixes of `.../*` entries)."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    urls: frozenset[str]
    url_prefixes: tuple[str, ...]
    source: Mapping[str, Any]

    @staticmethod
    def of(rule: Mapping[str, Any]) -> Rule:
        urls = _strings(rule.get("nonResourceURLs"))
        return Rule(frozenset(_strings(rule.get("verbs"))), frozenset(_strings(rule.get("apiGroups"))),
                    frozenset(_strings(rule.get("resources"))),
                    frozenset(_strings(rule.get("resourceNames"))), frozenset(urls),
                    tuple(u.rstrip("*") for u in urls if u.endswith("*")), rule)

    def allows(self, attrs: Attributes) -> bool:
        """kube's RuleAllows."""
        if ALL not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            return (ALL in self.urls or attrs.path in self.urls
                    or any(attrs.path.startswith(p) for p in self.url_prefixes))
        if ALL not in self.api_groups and attrs.api_group not in self.api_groups:
            return False
        if not self._resource_matches(attrs.resource, attrs.subresource):
            return False
        return not self.resource_names or attrs.name in self.resource_names

    def _resource_matches(self, resource: str, subresource: str) -> bool:
        if ALL in self.resources:
            return True
        if not subresource:
            return resource in self.resources
        return f"{resource}/{subresource}" in self.resources or f"*/{subresource}" in self.resources


def compile_rules(rules: Any) -> tuple[Rule, ...]:
    return tuple(Rule.of(r) for r in rules or () if isinstance(r, dict))


# --- covers: may a user who holds `owner` grant `servant`? -----------------------------------

def breakdown(rule: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    """kube's BreakdownRule: one rule per (group, resource, verb[, name]) or (url, verb)."""
    out: list[dict[str, list[str]]] = []
    verbs = _strings(rule.get("verbs"))
    names = _strings(rule.get("resourceNames"))
    for group in _strings(rule.get("apiGroups")):
        for resource in _strings(rule.get("resources")):
            for verb in verbs:
                if names:
                    out += [{"apiGroups": [group], "resources": [resource], "verbs": [verb],
                             "resourceNames": [n]} for n in names]
                else:
                    out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in _strings(rule.get("nonResourceURLs")):
        out += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return out


def _resource_covers(owner: frozenset[str], wanted: Iterable[str]) -> bool:
    if ALL in owner:
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _url_covers(owner: Rule, wanted: Iterable[str]) -> bool:
    return all(url in owner.urls or any(url.startswith(p) for p in owner.url_prefixes)
               for url in wanted)


def rule_covers(owner: Rule, wanted: Mapping[str, Any]) -> bool:
    """kube's ruleCovers, for `wanted` one broken-down rule."""
    verbs, groups = _strings(wanted.get("verbs")), _strings(wanted.get("apiGroups"))
    names = _strings(wanted.get("resourceNames"))
    return ((ALL in owner.verbs or all(v in owner.verbs for v in verbs))
            and (ALL in owner.api_groups or all(g in owner.api_groups for g in groups))
            and _resource_covers(owner.resources, _strings(wanted.get("resources")))
            and _url_covers(owner, _strings(wanted.get("nonResourceURLs")))
            and (not owner.resource_names
                 or bool(names) and all(n in owner.resource_names for n in names)))


def missing_rules(owner: Iterable[Rule], wanted: Iterable[Mapping[str, Any]]) -> list[dict[str, list[str]]]:
    """The parts of `wanted` no rule of `owner` covers (kube's Covers); empty: all covered."""
    owned = list(owner)
    missing = []
    for rule in wanted:
        for part in breakdown(rule):
            if not any(rule_covers(o, part) for o in owned):
                missing.append(part)
    return missing


def _go_strings(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def compact_string(rule: Mapping[str, list[str]]) -> str:
    """kube's CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`."""
    parts = [f"{label}:{_go_strings(rule[key])}" for key, label in
             (("apiGroups", "APIGroups"), ("resources", "Resources"),
              ("nonResourceURLs", "NonResourceURLs"), ("resourceNames", "ResourceNames"),
              ("verbs", "Verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


def compact(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """kube's CompactRules: the verbs of rules on one (group, resource, name) merged."""
    merged: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    out: list[dict[str, list[str]]] = []
    for rule in rules:
        names = rule.get("resourceNames") or []
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        if rule.get("nonResourceURLs") or len(groups) != 1 or len(resources) != 1 or len(names) > 1:
            out.append(rule)
            continue
        key = (groups[0], resources[0], names[0] if names else "")
        if key in merged:
            merged[key]["verbs"] = merged[key]["verbs"] + list(rule.get("verbs") or [])
        else:
            merged[key] = {k: list(v) for k, v in rule.items()}
    return out + list(merged.values())
