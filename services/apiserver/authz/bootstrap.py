"""The roles and bindings every cluster starts with (kube's rbac/bootstrappolicy), for what
this cluster runs, and their reconciliation at API server start (kube's
`rbac/bootstrap-roles` post-start hook).

- The user-facing roles as kube has them: cluster-admin (bound to `system:masters`), admin,
  edit and view (kube builds these three by aggregation, which this server does not evaluate:
  here they are flattened, each with the rules of the ones below it, restricted to the
  resources this server serves), and the discovery, basic-user and public-info roles.
- A role per component, bound to the identity it runs as: the proxy (user `system:kube-proxy`),
  the NetworkPolicy agents (user `system:netpol-agent`), the scheduler (user
  `system:kube-scheduler`), the DNS (ServiceAccount `kube-system/coredns`),
  the live picture (ServiceAccount `kube-system/netview`: it reads through nodes/proxy),
  and each controller (`system:controller:<name>`, bound to the ServiceAccount of that name in
  kube-system, as kube-controller-manager does with --use-service-account-credentials; a
  controller that runs in another's process is bound to that one's identity too). A
  controller's role grants what that controller's code calls and nothing more
  (`tests/apiserver/authz/test_bootstrap.py` holds each one to its calls).
- `system:node` holds the rules of kubelets but is bound to nobody: the Node authorizer
  (`authz/node.py`) gives nodes these rules, narrowed to their own pods' objects.

`reconcile` creates what is missing and adds missing rules, subjects, labels and annotations
to what exists, unless an object is annotated `rbac.authorization.kubernetes.io/autoupdate:
"false"` (an administrator's edit kept). It never removes anything.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from services.apiserver.authz.rules import compile_rules, missing_rules
from services.apiserver.registry.interfaces import ObjectStorage
from services.apiserver.registry.strategy import prepare_create, prepare_update

log = logging.getLogger("apiserver.rbac")

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE
EVENTS = ("create", "patch")  # what kubecore.client.events' recorder sends


def rule(verbs: tuple[str, ...] | str, groups: tuple[str, ...] | str, *resources: str,
         names: tuple[str, ...] = ()) -> Obj:
    out: Obj = {"verbs": [verbs] if isinstance(verbs, str) else list(verbs),
                "apiGroups": [groups] if isinstance(groups, str) else list(groups),
                "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    return out


def url_rule(verbs: tuple[str, ...] | str, *urls: str) -> Obj:
    return {"verbs": [verbs] if isinstance(verbs, str) else list(verbs), "nonResourceURLs": list(urls)}


def events_rule() -> Obj:
    return rule(("create", "update", "patch"), ("", "events.k8s.io"), "events")


# --- kube's rules ---------------------------------------------------------------------------

NODE_RULES: list[Obj] = [
    rule("create", "authentication.k8s.io", "tokenreviews"),
    rule("create", "authorization.k8s.io", "subjectaccessreviews", "localsubjectaccessreviews"),
    rule(READ, "", "services"),
    rule(("create", "get", "list", "watch"), "", "nodes"),
    rule(("update", "patch"), "", "nodes/status"),
    rule(("update", "patch"), "", "nodes"),
    rule(("create", "update", "patch"), "", "events"),
    rule(READ, "", "pods"),
    rule(("create", "delete"), "", "pods"),
    rule(("update", "patch"), "", "pods/status"),
    rule("create", "", "pods/eviction"),
    rule(READ, "", "secrets", "configmaps"),
    rule("get", "", "persistentvolumeclaims", "persistentvolumes"),
    rule("get", "", "endpoints"),
    rule(("create", "get", "list", "watch"), "certificates.k8s.io", "certificatesigningrequests"),
    rule(("get", "create", "update", "patch", "delete"), "coordination.k8s.io", "leases"),
    rule("get", "storage.k8s.io", "volumeattachments"),
    rule(("get", "update", "patch"), "", "persistentvolumeclaims/status"),
    rule("create", "", "serviceaccounts/token"),
    rule(("get", "watch", "list"), "storage.k8s.io", "csidrivers"),
    rule(("get", "create", "update", "patch", "delete"), "storage.k8s.io", "csinodes"),
    rule(READ, "node.k8s.io", "runtimeclasses"),
]

# kube's system:aggregate-to-{view,edit,admin}, whole; `_served` keeps what this server has.
_VIEW = [
    rule(READ, "", "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
         "services", "services/status", "endpoints", "persistentvolumeclaims",
         "persistentvolumeclaims/status", "configmaps"),
    rule(READ, "", "limitranges", "resourcequotas", "bindings", "events", "pods/status",
         "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
    rule(READ, "", "namespaces"),
    rule(READ, "discovery.k8s.io", "endpointslices"),
    rule(READ, "apps", "controllerrevisions", "statefulsets", "statefulsets/status",
         "statefulsets/scale", "daemonsets", "daemonsets/status", "deployments",
         "deployments/status", "deployments/scale", "replicasets", "replicasets/status",
         "replicasets/scale"),
    rule(READ, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
    rule(READ, "batch", "jobs", "jobs/status", "cronjobs", "cronjobs/status"),
    rule(READ, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
    rule(READ, "networking.k8s.io", "networkpolicies", "ingresses", "ingresses/status"),
]
_EDIT = [
    rule(READ, "", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets",
         "services/proxy"),
    rule("impersonate", "", "serviceaccounts"),
    rule(WRITE, "", "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
    rule("create", "", "pods/eviction"),
    rule(WRITE, "", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
         "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets"),
    rule("create", "", "serviceaccounts/token"),
    rule(WRITE, "apps", "statefulsets", "statefulsets/scale", "daemonsets", "deployments",
         "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"),
    rule(WRITE, "autoscaling", "horizontalpodautoscalers"),
    rule(WRITE, "batch", "jobs", "cronjobs"),
    rule(WRITE, "policy", "poddisruptionbudgets"),
    rule(WRITE, "networking.k8s.io", "networkpolicies", "ingresses"),
]
_ADMIN = [
    rule("create", "authorization.k8s.io", "localsubjectaccessreviews"),
    rule(READ_WRITE, RBAC_GROUP, "roles", "rolebindings"),
]


def _is_served(group: str, resource: str) -> bool:
    base, _, sub = resource.partition("/")
    return any(rt.group == group and rt.plural == base and (not sub or sub in rt.subresources)
               for rt in R.SERVED)


def _served(rules: list[Obj]) -> list[Obj]:
    """The rules with only the resources this server serves; rules left empty go."""
    out = []
    for r in rules:
        group = r["apiGroups"][0]
        kept = [res for res in r["resources"] if _is_served(group, res)]
        if kept:
            out.append({**r, "resources": kept})
    return out


# --- our components' roles: exactly their calls ---------------------------------------------

CONTROLLER_RULES: dict[str, list[Obj]] = {
    "endpointslice-controller": [
        rule(("list", "watch"), "", "services", "pods"),
        rule(("list", "watch", "create", "update", "delete"), "discovery.k8s.io", "endpointslices"),
    ],
    "endpoint-controller": [
        rule(("list", "watch"), "", "services", "pods"),
        rule(("list", "watch", "create", "update", "delete"), "", "endpoints"),
    ],
    "endpointslicemirroring-controller": [
        rule(("list", "watch"), "", "services", "endpoints"),
        rule(("list", "watch", "create", "update", "delete"), "discovery.k8s.io", "endpointslices"),
    ],
    "deployment-controller": [
        rule(("get", "list", "watch", "patch"), "apps", "deployments"),
        rule("patch", "apps", "deployments/status"),
        rule(("get", "list", "watch", "create", "patch", "delete"), "apps", "replicasets"),
        rule(("list", "watch"), "", "pods"),
        rule(EVENTS, "", "events"),
    ],
    "replicaset-controller": [
        rule(("get", "list", "watch"), "apps", "replicasets"),
        rule("patch", "apps", "replicasets/status"),
        rule(("list", "watch", "create", "patch", "delete"), "", "pods"),
        rule(EVENTS, "", "events"),
    ],
    "generic-garbage-collector": [
        rule(("get", "list", "watch", "patch", "delete"), "", "services", "pods", "nodes"),
        rule(("get", "list", "watch", "patch", "delete"), "apps", "deployments", "replicasets"),
        rule(("get", "list", "watch", "patch", "delete"), "discovery.k8s.io", "endpointslices"),
        rule(("get", "list", "watch", "patch", "delete"), "apps", "statefulsets", "daemonsets",
             "controllerrevisions"),
        rule("get", "", "endpoints"),  # the owner of a mirrored slice, looked up (not watched)
        rule(("get", "list", "watch", "patch", "delete"), "batch", "jobs", "cronjobs"),
    ],
    "node-controller": [
        rule(("list", "watch"), "", "nodes", "pods"),
        rule("update", "", "nodes/status", "pods/status"),
    ],
    "service-account-controller": [
        rule(("list", "watch"), "", "namespaces"),
        rule(("list", "watch", "create"), "", "serviceaccounts"),
    ],
    "statefulset-controller": [
        rule(("get", "list", "watch"), "apps", "statefulsets"),
        rule("patch", "apps", "statefulsets/status"),
        rule(("list", "watch", "create", "patch", "delete"), "", "pods"),
        rule(("get", "list", "watch", "create", "patch", "delete"), "apps", "controllerrevisions"),
        rule(EVENTS, "", "events"),
    ],
    "root-ca-cert-publisher": [
        rule(("list", "watch"), "", "namespaces"),
        rule(("list", "watch", "create", "update"), "", "configmaps"),
    ],
    "daemon-set-controller": [
        rule(("get", "list", "watch"), "apps", "daemonsets"),
        rule("update", "apps", "daemonsets/status"),
        rule(("list", "watch"), "", "nodes"),
        rule(("list", "watch", "create", "delete", "patch"), "", "pods"),
        rule(("get", "list", "watch", "create", "delete", "patch"), "apps", "controllerrevisions"),
        rule(EVENTS, "", "events"),
    ],
    "service-controller": [  # services/loadbalancer
        rule(("list", "watch"), "", "services"),
        rule("update", "", "services/status"),
        rule(EVENTS, "", "events"),
    ],
    "job-controller": [
        rule(("list", "watch"), "batch", "jobs"),
        rule("update", "batch", "jobs/status"),
        rule(("get", "list", "watch", "create", "patch", "delete"), "", "pods"),
        rule(EVENTS, "", "events"),
    ],
    "cronjob-controller": [
        rule(("get", "list", "watch"), "batch", "cronjobs"),
        rule("update", "batch", "cronjobs/status"),
        rule(("get", "list", "watch", "create", "delete"), "batch", "jobs"),
        rule(EVENTS, "", "events"),
    ],
    "ttl-after-finished-controller": [
        rule(("get", "list", "watch", "delete"), "batch", "jobs"),
    ],
}

# Controllers that run inside another controller's process, under that one's identity
# (cluster/credentials.py): their roles are bound to that ServiceAccount too.
SHARED_PROCESS: dict[str, tuple[str, ...]] = {
    "replicaset-controller": ("deployment-controller",),  # services/deployments runs both
    "root-ca-cert-publisher": ("service-account-controller",),  # services/serviceaccounts runs both
    "endpoint-controller": ("endpointslice-controller",),  # services/endpointslice runs all three
    "endpointslicemirroring-controller": ("endpointslice-controller",),
    "cronjob-controller": ("job-controller",),  # services/jobs runs all three
    "ttl-after-finished-controller": ("job-controller",),
}

# The Leases the controller processes elect their leaders through (`--leader-elect`): one per
# process, named after it, as kube-controller-manager's one is named after itself.
CONTROLLER_LEASES = ("endpointslice", "deployments", "gc", "nodelifecycle", "serviceaccounts", "statefulset",
                     "daemonset", "loadbalancer", "jobs")
# the ServiceAccount each controller process runs as (cluster/credentials.py)
CONTROLLER_PROCESS_ACCOUNTS = ("endpointslice-controller", "deployment-controller", "generic-garbage-collector",
                               "node-controller", "service-account-controller", "statefulset-controller",
                               "daemon-set-controller", "service-controller", "job-controller")

SCHEDULER_RULES = [
    events_rule(),
    rule("create", "coordination.k8s.io", "leases"),
    rule(("get", "update"), "coordination.k8s.io", "leases", names=("kube-scheduler",)),
    rule(READ, "", "nodes"),
    rule(("get", "list", "watch", "delete"), "", "pods"),
    rule("create", "", "pods/binding", "bindings"),
    rule(("patch", "update"), "", "pods/status"),
    rule(READ, "", "services", "replicationcontrollers"),
    rule(READ, ("apps", "extensions"), "replicasets"),
    rule(READ, "apps", "statefulsets"),
    rule(READ, "policy", "poddisruptionbudgets"),
    rule(READ, "", "persistentvolumeclaims", "persistentvolumes"),
    rule("create", "authentication.k8s.io", "tokenreviews"),
    rule("create", "authorization.k8s.io", "subjectaccessreviews"),
    rule(READ, "storage.k8s.io", "csinodes", "csidrivers", "csistoragecapacities"),
]


def _cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {**LABELS, **(labels or {})},
                         "annotations": {AUTOUPDATE: "true"}},
            "rules": copy.deepcopy(rules)}


def _subject(kind: str, name: str, namespace: str = "") -> Obj:
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def _binding(name: str, subjects: list[Obj], role: str | None = None) -> Obj:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(LABELS), "annotations": {AUTOUPDATE: "true"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role or name},
            "subjects": subjects}


def cluster_roles() -> list[Obj]:
    view, edit, admin = _served(_VIEW), _served(_EDIT), _served(_ADMIN)
    discovery = ("/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*",
                 "/api", "/api/*", "/apis", "/apis/*")
    roles = [
        _cluster_role("cluster-admin", [rule("*", "*", "*"), url_rule("*", "*")]),
        _cluster_role("system:discovery", [url_rule("get", *discovery)]),
        _cluster_role("system:basic-user", [
            rule("create", "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
            rule("create", "authentication.k8s.io", "selfsubjectreviews")]),
        _cluster_role("system:public-info-viewer", [
            url_rule("get", "/livez", "/readyz", "/healthz", "/version", "/version/")]),
        _cluster_role("system:service-account-issuer-discovery", [
            url_rule("get", "/.well-known/openid-configuration", "/openid/v1/jwks")]),
        _cluster_role("admin", admin + edit + view),
        _cluster_role("edit", edit + view, {f"{RBAC_GROUP}/aggregate-to-admin": "true"}),
        _cluster_role("view", view, {f"{RBAC_GROUP}/aggregate-to-edit": "true"}),
        _cluster_role("system:node", NODE_RULES),
        _cluster_role("system:node-proxier", [
            rule(("list", "watch"), "", "services", "endpoints"),
            rule(READ, "", "nodes"), events_rule(),
            rule(("list", "watch"), "discovery.k8s.io", "endpointslices")]),
        _cluster_role("system:kube-scheduler", SCHEDULER_RULES),
        _cluster_role("system:netpol-agent", [
            rule(("list", "watch"), "", "pods", "namespaces"),
            rule(("list", "watch"), "networking.k8s.io", "networkpolicies")]),
        _cluster_role("system:coredns", [
            rule(("list", "watch"), "", "services"),
            rule(("list", "watch"), "discovery.k8s.io", "endpointslices")]),
        _cluster_role("system:netview", [
            rule(("list", "watch"), "", "pods", "services", "nodes"),
            rule(("list", "watch"), "discovery.k8s.io", "endpointslices"),
            rule(("get", "create"), "", "nodes/proxy")]),
        _cluster_role("system:kubelet-api-admin", [
            rule(READ, "", "nodes"), rule("proxy", "", "nodes"),
            rule("*", "", "nodes/proxy", "nodes/metrics", "nodes/spec", "nodes/stats", "nodes/log")]),
        _cluster_role("system:auth-delegator", [
            rule("create", "authentication.k8s.io", "tokenreviews"),
            rule("create", "authorization.k8s.io", "subjectaccessreviews")]),
    ]
    roles += [_cluster_role(f"system:controller:{name}", rules)
              for name, rules in CONTROLLER_RULES.items()]
    # kube-system's system::leader-locking-kube-controller-manager, for our one-Lease-per-process
    roles.append(_cluster_role("system:leader-locking-controllers", [
        rule("create", "coordination.k8s.io", "leases"),
        # watch: a waiting copy follows its Lease's renewals as they happen (leaderelection.py)
        rule(("get", "update", "watch"), "coordination.k8s.io", "leases", names=CONTROLLER_LEASES)]))
    return roles


def cluster_role_bindings() -> list[Obj]:
    authenticated = _subject("Group", "system:authenticated")
    bindings = [
        _binding("cluster-admin", [_subject("Group", "system:masters")]),
        _binding("system:discovery", [authenticated]),
        _binding("system:basic-user", [authenticated]),
        _binding("system:public-info-viewer", [authenticated,
                                               _subject("Group", "system:unauthenticated")]),
        _binding("system:service-account-issuer-discovery",
                 [_subject("Group", "system:serviceaccounts")]),
        _binding("system:node-proxier", [_subject("User", "system:kube-proxy")]),
        _binding("system:kube-scheduler", [_subject("User", "system:kube-scheduler")]),
        _binding("system:netpol-agent", [_subject("User", "system:netpol-agent")]),
        _binding("system:coredns", [_subject("ServiceAccount", "coredns", "kube-system")]),
        _binding("system:netview", [_subject("ServiceAccount", "netview", "kube-system")]),
        _binding("system:kubelet-api-admin", [_subject("User", "kube-apiserver-kubelet-client")]),
        _binding("system:node", []),
    ]
    for name in CONTROLLER_RULES:
        accounts = (name, *SHARED_PROCESS.get(name, ()))
        bindings.append(_binding(f"system:controller:{name}",
                                 [_subject("ServiceAccount", sa, "kube-system") for sa in accounts]))
    bindings.append(_binding("system:leader-locking-controllers",
                             [_subject("ServiceAccount", sa, "kube-system") for sa in CONTROLLER_PROCESS_ACCOUNTS]))
    for b in bindings:
        if not b["subjects"]:
            del b["subjects"]
    return bindings


# --- reconciliation -----------------------------------------------------------------------

def _merged_metadata(existing: Obj, wanted: Obj) -> bool:
    """Add the wanted labels and annotations the existing object lacks; -> whether any."""
    changed = False
    for key in ("labels", "annotations"):
        have = existing["metadata"].setdefault(key, {})
        for k, v in wanted["metadata"].get(key, {}).items():
            if k not in have:
                have[k] = v
                changed = True
        if not have:
            del existing["metadata"][key]
    return changed


def reconciled_role(existing: Obj, wanted: Obj) -> Obj | None:
    """The role with what the bootstrap one has that it lacks; None: nothing to do."""
    if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return None
    new = copy.deepcopy(existing)
    changed = _merged_metadata(new, wanted)
    missing = missing_rules(compile_rules(new.get("rules")), wanted.get("rules") or [])
    if missing:
        new["rules"] = (new.get("rules") or []) + missing
        changed = True
    return new if changed else None


def reconciled_binding(existing: Obj, wanted: Obj) -> Obj | None:
    """The binding with the bootstrap subjects it lacks; None: nothing to do. A binding to
    another role is left alone (kube would re-create it; an administrator chose it)."""
    if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return None
    if existing.get("roleRef") != wanted.get("roleRef"):
        log.warning("ClusterRoleBinding %s binds %s, not %s: left as it is",
                    existing["metadata"]["name"], existing.get("roleRef"), wanted.get("roleRef"))
        return None
    new = copy.deepcopy(existing)
    changed = _merged_metadata(new, wanted)
    have = new.get("subjects") or []
    missing = [s for s in wanted.get("subjects") or [] if s not in have]
    if missing:
        new["subjects"] = have + missing
        changed = True
    return new if changed else None


async def _reconcile_one(storage: ObjectStorage, rt: R.ResourceType, wanted: Obj) -> str:
    name = wanted["metadata"]["name"]
    merge = reconciled_role if rt is R.CLUSTERROLES else reconciled_binding
    try:
        await storage.create(rt, prepare_create(rt, copy.deepcopy(wanted), None))
        return "created"
    except ApiError as exc:
        if exc.code != 409:
            raise

    async def mutate(current: Obj) -> Obj | None:
        new = merge(current, wanted)
        return None if new is None else prepare_update(rt, new, current, status_only=False)

    _, written = await storage.update(rt, None, name, mutate)
    return "updated" if written else "unchanged"


async def reconcile(storage: ObjectStorage) -> dict[str, int]:
    """Bring the bootstrap roles and bindings into the store; -> counts by outcome."""
    counts: dict[str, int] = {}
    items: list[tuple[R.ResourceType, Any]] = [(R.CLUSTERROLES, r) for r in cluster_roles()]
    items += [(R.CLUSTERROLEBINDINGS, b) for b in cluster_role_bindings()]
    # all at once: the storage commits concurrent writes together (one etcd transaction)
    for outcome in await asyncio.gather(*(_reconcile_one(storage, rt, w) for rt, w in items)):
        counts[outcome] = counts.get(outcome, 0) + 1
    log.info("bootstrap RBAC policy: %s", counts)
    return counts
