"""Authorization: may this user do this (kube-apiserver's `authorizer.Authorizer` chain).

A request is described by `Attributes` (kube's `authorizer.AttributesRecord`: the user, the
verb, and either the resource, subresource, namespace and name, or a non-resource path). Each
authorizer answers ALLOW, DENY or NO_OPINION; `Union` asks them in order (the flag
`--authorization-mode`, e.g. `Node,RBAC`) and the first ALLOW or DENY decides; no opinion from
all of them is a refusal. `system:masters` is allowed before any mode is asked
(`PrivilegedGroups`).

    rules       PolicyRules: matching a request, one set covering another (pure)
    rbac        the RBAC authorizer over the watch caches, indexed by subject, decisions kept
    node        the Node authorizer: kubelets get their own pods' objects
    escalation  an admission plugin: RBAC objects grant only what their writer holds
    bootstrap   the default roles and bindings, reconciled at start
    reviews     SubjectAccessReview and its Local/Self kinds, SelfSubjectRulesReview,
                SelfSubjectReview: the authorizers asked through the API
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from services.apiserver.registry.interfaces import UserInfo


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


NO_OPINION = Decision(Verdict.NO_OPINION)


@dataclass(frozen=True, slots=True)
class Attributes:
    user: UserInfo
    verb: str  # get list watch create update patch delete deletecollection; or an HTTP verb
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # the URL path of a non-resource request


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...


class AlwaysAllow:
    """`--authorization-mode=AlwaysAllow`: every authenticated request may do anything."""

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(Verdict.ALLOW)


class PrivilegedGroups:
    """Members of these groups may do anything, before any other authorizer is asked
    (kube-apiserver puts `system:masters` in front of every --authorization-mode): the
    cluster's administrators and the server's own loopback calls never depend on the RBAC
    objects being there."""

    def __init__(self, *groups: str) -> None:
        self.groups = frozenset(groups)

    def authorize(self, attrs: Attributes) -> Decision:
        if self.groups.intersection(attrs.user.groups):
            return Decision(Verdict.ALLOW)
        return NO_OPINION


class Union:
    def __init__(self, authorizers: list[Authorizer]) -> None:
        self.authorizers = authorizers

    def authorize(self, attrs: Attributes) -> Decision:
        reasons = []
        for authorizer in self.authorizers:
            decision = authorizer.authorize(attrs)
            if decision.verdict is not Verdict.NO_OPINION:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision(Verdict.NO_OPINION, ", ".join(reasons))
