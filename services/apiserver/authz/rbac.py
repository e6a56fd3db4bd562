"""The RBAC authorizer (kube's plugin/pkg/auth/authorizer/rbac), over the API server's own
watch caches of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings.

A request is allowed when a rule of a role bound to its user allows it: ClusterRoleBindings
anywhere, RoleBindings (to a Role of their namespace or to a ClusterRole) in the request's
namespace. Subjects are Users by name, Groups, and ServiceAccounts as the user
`system:serviceaccount:<namespace>:<name>` (a RoleBinding's ServiceAccount without a namespace
is of the binding's). It never denies: no rule is no opinion, and the reason says which bound
roles could not be found, as kube's does.

Every request is authorized, so the work is done when the RBAC objects change, not per
request: `Policy` is a snapshot of the four caches with the bindings indexed by subject and the
rules compiled, rebuilt only when one of the caches' revisions moved; decisions are remembered
per request attributes (user and groups included) until then.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubecore.api.types import Obj
from services.apiserver.authz import NO_OPINION, Attributes, Decision, Verdict
from services.apiserver.authz.reviews import RulesFound, rules_of_policy
from services.apiserver.authz.rules import Rule, compile_rules
from services.apiserver.registry.interfaces import UserInfo

SA_PREFIX = "system:serviceaccount:"
RBAC_KINDS = ("clusterroles", "roles", "clusterrolebindings", "rolebindings")
DECISION_CACHE_SIZE = 100_000


class WatchedKind(Protocol):
    """What RBAC reads of a watch cache: its objects and how far it has applied etcd."""

    @property
    def objects(self) -> Mapping[str, tuple[Obj, int]]: ...

    @property
    def revision(self) -> int: ...


Caches = Mapping[str, WatchedKind]


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


@dataclass(frozen=True, slots=True)
class Grant:
    """One binding as it applies to one subject: where its rules come from, and kube's words
    for it in a decision's reason."""

    role_kind: str  # Role | ClusterRole
    role_name: str
    namespace: str  # the binding's; "" for a ClusterRoleBinding
    description: str


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind") or "", subject.get("name") or ""
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _subject_key(subject: Obj, binding_namespace: str) -> tuple[str, str] | None:
    """("user", name) or ("group", name) for a subject; None for one that matches nobody."""
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "User":
        return ("user", name)
    if kind == "Group":
        return ("group", name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("user", service_account_user(namespace, name)) if namespace else None
    return None


@dataclass
class Policy:
    """The RBAC objects at one moment, indexed for lookups by subject."""

    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    # (namespace or "" for cluster-wide, "user" | "group", name) -> grants
    grants: dict[tuple[str, str, str], list[Grant]] = field(default_factory=lambda: defaultdict(list))

    @staticmethod
    def build(caches: Caches) -> Policy:
        p = Policy()
        for obj in _objects(caches, "clusterroles"):
            p.cluster_roles[obj["metadata"]["name"]] = compile_rules(obj.get("rules"))
        for obj in _objects(caches, "roles"):
            meta = obj["metadata"]
            p.roles[(meta.get("namespace") or "", meta["name"])] = compile_rules(obj.get("rules"))
        for obj in _objects(caches, "clusterrolebindings"):
            p._index(obj, "", "ClusterRoleBinding")
        for obj in _objects(caches, "rolebindings"):
            p._index(obj, obj["metadata"].get("namespace") or "", "RoleBinding")
        return p

    def _index(self, binding: Obj, namespace: str, kind: str) -> None:
        ref = binding.get("roleRef") or {}
        role_kind, role_name = ref.get("kind") or "", ref.get("name") or ""
        name = binding["metadata"]["name"] + (f"/{namespace}" if namespace else "")
        for subject in binding.get("subjects") or []:
            if not isinstance(subject, dict):
                continue
            key = _subject_key(subject, namespace)
            if key is None:
                continue
            description = (f'{kind} "{name}" of {role_kind} "{role_name}" to '
                           f'{_describe_subject(subject, namespace)}')
            self.grants[(namespace, *key)].append(Grant(role_kind, role_name, namespace, description))

    def grants_for(self, user: UserInfo, namespace: str) -> Iterator[Grant]:
        """The bindings that apply to `user` in `namespace`: cluster-wide ones first, then
        (for a namespaced request) those of the namespace, as kube visits them."""
        scopes = ("", namespace) if namespace else ("",)
        for scope in scopes:
            yield from self.grants.get((scope, "user", user.name), ())
            for group in user.groups:
                yield from self.grants.get((scope, "group", group), ())

    def rules_of(self, grant: Grant) -> tuple[tuple[Rule, ...], str | None]:
        """The rules a grant gives, or kube's error when its role does not exist."""
        if grant.role_kind == "ClusterRole":
            rules = self.cluster_roles.get(grant.role_name)
            if rules is None:
                return (), f'clusterrole.rbac.authorization.k8s.io "{grant.role_name}" not found'
            return rules, None
        if grant.role_kind == "Role" and grant.namespace:
            rules = self.roles.get((grant.namespace, grant.role_name))
            if rules is None:
                return (), f'role.rbac.authorization.k8s.io "{grant.role_name}" not found'
            return rules, None
        return (), f'unknown role kind "{grant.role_kind}"'

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule `user` holds in `namespace`, and the errors met (kube's RulesFor)."""
        rules: list[Rule] = []
        errors: list[str] = []
        for grant in self.grants_for(user, namespace):
            granted, error = self.rules_of(grant)
            rules.extend(granted)
            if error is not None and error not in errors:
                errors.append(error)
        return rules, errors

    def rules_of_ref(self, ref: Obj, namespace: str) -> tuple[tuple[Rule, ...], str | None]:
        """The rules a binding's roleRef names (kube's GetRoleReferenceRules)."""
        return self.rules_of(Grant(ref.get("kind") or "", ref.get("name") or "", namespace, ""))

    def decide(self, attrs: Attributes) -> Decision:
        errors: list[str] = []
        for grant in self.grants_for(attrs.user, attrs.namespace):
            rules, error = self.rules_of(grant)
            if error is not None and error not in errors:
                errors.append(error)
            if any(rule.allows(attrs) for rule in rules):
                return Decision(Verdict.ALLOW, f"RBAC: allowed by {grant.description}")
        if not errors:
            return NO_OPINION
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return Decision(Verdict.NO_OPINION, f"RBAC: {joined}")


def _objects(caches: Caches, plural: str) -> Iterator[Obj]:
    cache = caches.get(plural)
    if cache is None:
        return
    for obj, _ in list(cache.objects.values()):
        if isinstance(obj.get("metadata"), dict) and obj["metadata"].get("name"):
            yield obj


class RBACAuthorizer:
    """`--authorization-mode=RBAC`. `policy()` is the current snapshot, rebuilt when a cache
    of the four kinds has moved since the last one."""

    def __init__(self, caches: Caches, *, cache_size: int = DECISION_CACHE_SIZE) -> None:
        self.caches = caches
        self.cache_size = cache_size
        self._revisions: tuple[int, ...] | None = None
        self._policy = Policy()
        self._decisions: dict[Attributes, Decision] = {}
        self.rebuilds = 0

    def _current_revisions(self) -> tuple[int, ...]:
        get: Callable[[str], Any] = self.caches.get
        return tuple(c.revision if c is not None else -1 for c in map(get, RBAC_KINDS))

    def policy(self) -> Policy:
        revisions = self._current_revisions()
        if revisions != self._revisions:
            self._policy = Policy.build(self.caches)
            self._revisions = revisions
            self._decisions = {}
            self.rebuilds += 1
        return self._policy

    def authorize(self, attrs: Attributes) -> Decision:
        policy = self.policy()
        decision = self._decisions.get(attrs)
        if decision is None:
            decision = policy.decide(attrs)
            if len(self._decisions) >= self.cache_size:
                self._decisions.clear()
            self._decisions[attrs] = decision
        return decision

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        return self.policy().rules_for(user, namespace)

    def resolve_rules(self, user: UserInfo, namespace: str) -> RulesFound:
        rules, errors = self.rules_for(user, namespace)
        found = rules_of_policy([r.source for r in rules])
        found.errors = errors
        return found
