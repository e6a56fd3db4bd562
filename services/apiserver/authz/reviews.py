"""The access reviews (kube's pkg/registry/authorization and authentication's selfsubjectreview):
questions put to the authorizers through the API, answered in the response and never stored.

- SubjectAccessReview: may this user (name, groups, extra, uid as given) do this?
- LocalSubjectAccessReview: the same, inside the namespace of its URL.
- SelfSubjectAccessReview: may I (`kubectl auth can-i`)?
- SelfSubjectRulesReview: what may I do in this namespace (`kubectl auth can-i --list`)? The
  rules of every authorizer that can list them; `incomplete` when one cannot (the Node
  authorizer for nodes).
- SelfSubjectReview: who am I (`kubectl auth whoami`)?
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubecore.api import resources as R
from kubecore.api.errors import Cause, bad_request, invalid
from kubecore.api.types import Obj
from services.apiserver.authz import Attributes, Authorizer, Verdict
from services.apiserver.registry.interfaces import UserInfo
from services.apiserver.registry.meta import now_rfc3339


@dataclass
class RulesFound:
    """What one authorizer says a user may do in a namespace (kube's RulesFor)."""

    resource_rules: list[Obj] = field(default_factory=list)
    non_resource_rules: list[Obj] = field(default_factory=list)
    incomplete: bool = False
    errors: list[str] = field(default_factory=list)


class RuleResolver(Protocol):
    def resolve_rules(self, user: UserInfo, namespace: str) -> RulesFound: ...


def _go_value(value: Any) -> str:
    """A NonResourceAttributes as kube's field error prints it (Go's %#v)."""
    if not isinstance(value, dict):
        return "null"
    return (f'&authorization.NonResourceAttributes{{Path:"{value.get("path") or ""}", '
            f'Verb:"{value.get("verb") or ""}"}}')


def spec_causes(spec: Obj, *, self_review: bool, local: bool) -> list[Cause]:
    """kube's ValidateSubjectAccessReviewSpec (and its Self and Local variants)."""
    causes: list[Cause] = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if local and non_resource is not None:
        causes.append(Cause("spec.nonResourceAttributes", "Invalid value: "
                            f"{_go_value(non_resource)}: disallowed on this kind of request"))
    elif resource is not None and non_resource is not None:
        causes.append(Cause("spec.nonResourceAttributes", "Invalid value: "
                            f"{_go_value(non_resource)}: cannot be specified in combination with "
                            "resourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(Cause("spec.resourceAttributes", "Invalid value: null: exactly one of "
                            "nonResourceAttributes or resourceAttributes must be specified"))
    if not self_review and not spec.get("user") and not spec.get("groups"):
        causes.append(Cause("spec.user", f'Invalid value: "{spec.get("user") or ""}": at least one '
                            "of user or group must be specified"))
    return causes


def _extra(raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, dict):
        return ()
    return tuple(sorted((k, tuple(v or ())) for k, v in raw.items()))


def reviewed_user(spec: Obj) -> UserInfo:
    """The user a SubjectAccessReview asks about, exactly as given (no groups added)."""
    return UserInfo(spec.get("user") or "", spec.get("uid") or "", tuple(spec.get("groups") or ()),
                    _extra(spec.get("extra")))


def attributes(user: UserInfo, spec: Obj) -> Attributes:
    """kube's AuthorizationAttributesFrom: an empty version matches every version."""
    resource = spec.get("resourceAttributes")
    if resource is not None:
        return Attributes(user=user, verb=resource.get("verb") or "",
                          namespace=resource.get("namespace") or "",
                          api_group=resource.get("group") or "",
                          api_version=resource.get("version") or "*",
                          resource=resource.get("resource") or "",
                          subresource=resource.get("subresource") or "",
                          name=resource.get("name") or "")
    non_resource = spec.get("nonResourceAttributes") or {}
    return Attributes(user=user, verb=non_resource.get("verb") or "", resource_request=False,
                      path=non_resource.get("path") or "")


class Reviewer:
    """Answers the reviews with the server's authorizer chain and rule resolvers."""

    def __init__(self, authorizer: Authorizer, resolvers: Sequence[RuleResolver]) -> None:
        self.authorizer = authorizer
        self.resolvers = list(resolvers)

    def access_review(self, rt: R.ResourceType, body: Obj, user: UserInfo,
                      namespace: str | None) -> Obj:
        """Subject, Local or Self SubjectAccessReview: the body with its status."""
        self_review, local = rt is R.SELFSUBJECTACCESSREVIEWS, rt is R.LOCALSUBJECTACCESSREVIEWS
        spec = body.get("spec") or {}
        causes = spec_causes(spec, self_review=self_review, local=local)
        # kube compares with an empty ObjectMeta: null and empty fields are empty
        meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields" and v}
        if local:
            _check_local(meta, spec, namespace or "")
            meta.pop("namespace", None)
        if meta and not causes:
            causes.append(Cause("metadata", "Invalid value: must be empty"))
        if causes:
            raise invalid(rt.kind, "", causes, rt.group)
        subject = user if self_review else reviewed_user(spec)
        decision = self.authorizer.authorize(attributes(subject, spec))
        status: Obj = {"allowed": decision.allowed}
        if decision.verdict is Verdict.DENY:
            status["denied"] = True
        if decision.reason:
            status["reason"] = decision.reason
        out = copy.deepcopy(body)
        out.update(apiVersion=rt.api_version, kind=rt.kind, status=status)
        out.setdefault("metadata", {})
        out["metadata"].setdefault("creationTimestamp", None)
        return out

    def rules_review(self, body: Obj, user: UserInfo) -> Obj:
        """SelfSubjectRulesReview: the rules `user` holds in spec.namespace."""
        namespace = (body.get("spec") or {}).get("namespace") or ""
        if not namespace:
            raise bad_request("no namespace on request")
        found = RulesFound()
        for resolver in self.resolvers:
            part = resolver.resolve_rules(user, namespace)
            found.resource_rules += part.resource_rules
            found.non_resource_rules += part.non_resource_rules
            found.incomplete = found.incomplete or part.incomplete
            found.errors += part.errors
        status: Obj = {"resourceRules": found.resource_rules,
                       "nonResourceRules": found.non_resource_rules,
                       "incomplete": found.incomplete}
        if found.errors:
            status["evaluationError"] = (found.errors[0] if len(found.errors) == 1
                                         else "[" + ", ".join(found.errors) + "]")
        rt = R.SELFSUBJECTRULESREVIEWS
        return {"kind": rt.kind, "apiVersion": rt.api_version,
                "metadata": {"creationTimestamp": None}, "spec": {}, "status": status}


def _check_local(meta: Obj, spec: Obj, namespace: str) -> None:
    if not namespace:
        raise bad_request(f"namespace is required on this type: {namespace}")
    if meta.get("namespace") not in (None, "", namespace):
        raise bad_request(f"namespace of the request must match the namespace of the object: {namespace}")
    resource_ns = (spec.get("resourceAttributes") or {}).get("namespace")
    if resource_ns != namespace:
        raise bad_request(f"spec.resourceAttributes.namespace must match namespace: {namespace}")


def whoami(user: UserInfo) -> Obj:
    """SelfSubjectReview: the user as authentication found it."""
    info: Obj = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra}
    rt = R.SELFSUBJECTREVIEWS
    return {"kind": rt.kind, "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": now_rfc3339()}, "status": {"userInfo": info}}


class AllRules:
    """`--authorization-mode=AlwaysAllow` lists everything (kube's alwaysAllowAuthorizer)."""

    def resolve_rules(self, user: UserInfo, namespace: str) -> RulesFound:
        return RulesFound([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                          [{"verbs": ["*"], "nonResourceURLs": ["*"]}])


def rules_of_policy(rules: Sequence[Mapping[str, Any]]) -> RulesFound:
    """RBAC's PolicyRules as a rules review lists them."""
    found = RulesFound()
    for r in rules:
        if r.get("resources"):
            entry: Obj = {"verbs": list(r.get("verbs") or [])}
            for key in ("apiGroups", "resources", "resourceNames"):
                if r.get(key):
                    entry[key] = list(r[key])
            found.resource_rules.append(entry)
        if r.get("nonResourceURLs"):
            found.non_resource_rules.append({"verbs": list(r.get("verbs") or []),
                                             "nonResourceURLs": list(r["nonResourceURLs"])})
    return found
