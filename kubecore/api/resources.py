"""The resource registry: every API resource is declared here, once.

A declaration names its group/version/kind, URL plural and short names, the
pydantic model for its shape, its semantic validation, its defaulting, and the
field selectors it supports. The API server, the clients and the CLI all read
from this table; adding a resource is adding an entry. The rules themselves live
by API group: validation in `kubecore.api.validation.<group>`, defaults in
`kubecore.api.defaults`, selectable fields in `kubecore.api.fieldselectors`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

from kubecore.api import defaults as d
from kubecore.api import fieldselectors as fs
from kubecore.api import formats as v
from kubecore.api.batch import generate_job_selector
from kubecore.api.defaults import carry_over_service_allocations as carry_over_service_allocations
from kubecore.api.defaults import daemonset_template_generation as daemonset_template_generation
from kubecore.api.errors import Cause
from kubecore.api.leases import convert_lease
from kubecore.api.secrets import convert_secret
from kubecore.api.selectors import FieldGetter
from kubecore.api.subsets import canonicalize_endpoints
from kubecore.api.types import Obj
from kubecore.api.validation import (
    apps,
    batch,
    coordination,
    core,
    discovery,
    networking,
    rbac,
    secrets,
    statefulset,
)
from kubecore.api.validation import endpoints as endpoints_validation
from kubecore.api.validation import service as svc_v
from kubecore.api.validation.meta import metadata_causes as metadata_causes

Validator = Callable[[Obj, Obj | None], list[Cause]]
Defaulter = Callable[[Obj], None]
Converter = Callable[[Obj], None]


def _noop_validate(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


def _noop_default(obj: Obj) -> None:
    return None


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model_name: str  # its pydantic model in kubecore.api.models (imported when first asked for)
    name_rule: Callable[[str], list[str]] = v.dns1123_subdomain_errors
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    validate: Validator = _noop_validate
    # the rules of the status, checked on create and on /status writes (a write of the main
    # resource keeps the stored status)
    validate_status: Validator = _noop_validate
    default: Defaulter = _noop_default
    # What kube's conversion from the wire version does before defaults (a Secret's base64
    # decoded, its stringData merged): changes the object in place, raises ApiError (400).
    convert: Converter = _noop_default
    field_getters: dict[str, FieldGetter] = field(default_factory=dict)
    # Objects whose deletion is graceful (pods): DELETE marks them, the node agent finishes it.
    graceful_delete: bool = False
    # kube's strategy Canonicalize: the stored form of a valid object (Endpoints' subsets
    # repacked), applied after validation so causes name the fields as sent.
    canonicalize: Converter = _noop_default
    # What kube's PrepareForCreate adds once the uid is assigned, before defaults (a Job's
    # generated selector): changes the object in place.
    prepare_create: Converter = _noop_default
    # What becomes of the dependents when a DELETE names no policy (the strategy's
    # DefaultGarbageCollectionPolicy): batch/v1 Jobs orphan their pods, for compatibility.
    default_propagation: str = "Background"

    @property
    def model(self) -> type[BaseModel]:
        """The pydantic model of the kind (the API server's shape checks). Imported here, not
        with the table, so that clients of the table (minikubectl) start without pydantic."""
        from kubecore.api import models
        model: type[BaseModel] = getattr(models, self.model_name)
        return model

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def key_prefix(self, namespace: str | None = None) -> str:
        base = f"/registry/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


# --- the table ----------------------------------------------------------------------

NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, "Namespace",
                          name_rule=v.dns1123_label_errors, short_names=("ns",),
                          subresources=("status",), default=d.default_namespace,
                          field_getters=fs.NAMESPACE_FIELDS)
SERVICES = ResourceType("", "v1", "Service", "services", "service", True, "Service",
                        name_rule=v.dns1035_label_errors, short_names=("svc",), categories=("all",),
                        subresources=("status",), validate=svc_v.validate_service,
                        validate_status=svc_v.validate_service_status, default=d.default_service,
                        field_getters=fs.SERVICE_FIELDS)
PODS = ResourceType("", "v1", "Pod", "pods", "pod", True, "Pod", short_names=("po",),
                    categories=("all",), subresources=("status", "binding", "log", "exec", "attach", "portforward"),
                    validate=core.validate_pod, default=d.default_pod, field_getters=fs.POD_FIELDS,
                    graceful_delete=True)
NODES = ResourceType("", "v1", "Node", "nodes", "node", False, "Node", short_names=("no",),
                     subresources=("status", "proxy"), validate=core.validate_node,
                     validate_status=core.validate_node_status, default=d.default_node,
                     field_getters=fs.NODE_FIELDS)
ENDPOINTSLICES = ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                              "endpointslice", True, "EndpointSlice",
                              validate=discovery.validate_endpointslice, default=d.default_endpointslice,
                              field_getters=fs.COMMON_FIELDS)
# core/v1 Endpoints: a Service's addresses the pre-slice way, kept by the endpoints controller
# (Services with a selector) or by users (without one); mirrored into EndpointSlices.
ENDPOINTS = ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, "Endpoints",
                         short_names=("ep",), validate=endpoints_validation.validate_endpoints,
                         default=d.default_endpoints, canonicalize=canonicalize_endpoints,
                         field_getters=fs.COMMON_FIELDS)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True,
                           "Deployment", short_names=("deploy",), categories=("all",),
                           subresources=("status", "scale"), validate=apps.validate_deployment,
                           default=d.default_deployment, field_getters=fs.COMMON_FIELDS)
REPLICASETS = ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True,
                           "ReplicaSet", short_names=("rs",), categories=("all",),
                           subresources=("status", "scale"), validate=apps.validate_replicaset,
                           default=d.default_replicaset, field_getters=fs.COMMON_FIELDS)
# apps/v1 ControllerRevisions: the rollout history of StatefulSets and DaemonSets.
CONTROLLERREVISIONS = ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions",
                                   "controllerrevision", True, "ControllerRevision",
                                   validate=apps.validate_controllerrevision,
                                   field_getters=fs.COMMON_FIELDS)
# apps/v1 StatefulSets: pods with stable names `<set>-<ordinal>` (services/statefulset); names
# are DNS labels, as kube's ValidateStatefulSetName.
STATEFULSETS = ResourceType("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True,
                            "StatefulSet", name_rule=v.dns1123_label_errors,
                            short_names=("sts",), categories=("all",),
                            subresources=("status", "scale"),
                            validate=statefulset.validate_statefulset,
                            validate_status=statefulset.validate_statefulset_status,
                            default=d.default_statefulset, field_getters=fs.COMMON_FIELDS)
# apps/v1 DaemonSets: one pod per node that should run it (services/daemonset).
DAEMONSETS = ResourceType("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True,
                          "DaemonSet", short_names=("ds",), categories=("all",),
                          subresources=("status",), validate=apps.validate_daemonset,
                          validate_status=apps.validate_daemonset_status,
                          default=d.default_daemonset, field_getters=fs.COMMON_FIELDS)
# core/v1 Events: written by the services through `kubecore.client.events`, read by describe; the
# API server removes them after --event-ttl.
EVENTS = ResourceType("", "v1", "Event", "events", "event", True, "Event",
                      short_names=("ev",), field_getters=fs.EVENT_FIELDS)

# core/v1 ServiceAccounts (who a pod acts as; their tokens are `serviceaccounts/<name>/token`)
# and ConfigMaps (the cluster CA reaches pods as `kube-root-ca.crt`).
SERVICEACCOUNTS = ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True,
                               "ServiceAccount", short_names=("sa",), subresources=("token",),
                               field_getters=fs.COMMON_FIELDS)
CONFIGMAPS = ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, "ConfigMap",
                          short_names=("cm",), validate=core.validate_configmap,
                          field_getters=fs.COMMON_FIELDS)
SECRETS = ResourceType("", "v1", "Secret", "secrets", "secret", True, "Secret",
                       validate=secrets.validate_secret, default=d.default_secret,
                       convert=convert_secret, field_getters=fs.SECRET_FIELDS)

# RBAC (rbac.authorization.k8s.io/v1): names are path segments ("system:node"), as kube's.
ROLES = ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True, "Role",
                     name_rule=v.path_segment_name_errors, validate=rbac.validate_role,
                     field_getters=fs.COMMON_FIELDS)
CLUSTERROLES = ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles",
                            "clusterrole", False, "ClusterRole",
                            name_rule=v.path_segment_name_errors, validate=rbac.validate_clusterrole,
                            field_getters=fs.COMMON_FIELDS)
ROLEBINDINGS = ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings",
                            "rolebinding", True, "RoleBinding",
                            name_rule=v.path_segment_name_errors, validate=rbac.validate_rolebinding,
                            default=d.default_binding, field_getters=fs.COMMON_FIELDS)
CLUSTERROLEBINDINGS = ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding",
                                   "clusterrolebindings", "clusterrolebinding", False,
                                   "RoleBinding", name_rule=v.path_segment_name_errors,
                                   validate=rbac.validate_clusterrolebinding,
                                   default=d.default_binding, field_getters=fs.COMMON_FIELDS)

# batch/v1: Jobs run pods to completion, CronJobs make Jobs on a schedule (services/jobs).
JOBS = ResourceType("batch", "v1", "Job", "jobs", "job", True, "Job", categories=("all",),
                    subresources=("status",), validate=batch.validate_job,
                    validate_status=batch.validate_job_status, default=d.default_job,
                    prepare_create=generate_job_selector, field_getters=fs.JOB_FIELDS,
                    default_propagation="Orphan")
CRONJOBS = ResourceType("batch", "v1", "CronJob", "cronjobs", "cronjob", True, "CronJob",
                        short_names=("cj",), categories=("all",), subresources=("status",),
                        validate=batch.validate_cronjob, default=d.default_cronjob,
                        field_getters=fs.COMMON_FIELDS)
# coordination.k8s.io/v1 Leases (who holds what until when: node heartbeats, leader
# election) and networking.k8s.io/v1 NetworkPolicies (stored and served; not enforced).
LEASES = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, "Lease",
                      validate=coordination.validate_lease, default=d.default_lease,
                      convert=convert_lease, field_getters=fs.COMMON_FIELDS)
NETWORKPOLICIES = ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies",
                               "networkpolicy", True, "NetworkPolicy", short_names=("netpol",),
                               validate=networking.validate_networkpolicy,
                               default=d.default_networkpolicy, field_getters=fs.COMMON_FIELDS)

ALL: tuple[ResourceType, ...] = (NAMESPACES, SERVICES, PODS, NODES, ENDPOINTSLICES,
                                 DEPLOYMENTS, REPLICASETS, EVENTS, SECRETS, SERVICEACCOUNTS,
                                 CONFIGMAPS, ROLES, CLUSTERROLES, ROLEBINDINGS, CLUSTERROLEBINDINGS,
                                 CONTROLLERREVISIONS, STATEFULSETS, DAEMONSETS, ENDPOINTS,
                                 JOBS, CRONJOBS, LEASES, NETWORKPOLICIES)

# Reviews: created to ask a question, answered in the response, never stored (no watch
# cache, no list); served under their groups beside the stored kinds.
SUBJECTACCESSREVIEWS = ResourceType("authorization.k8s.io", "v1", "SubjectAccessReview",
                                    "subjectaccessreviews", "subjectaccessreview", False,
                                    "SubjectAccessReview")
SELFSUBJECTACCESSREVIEWS = ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
                                        "selfsubjectaccessreviews", "selfsubjectaccessreview",
                                        False, "SubjectAccessReview")
LOCALSUBJECTACCESSREVIEWS = ResourceType("authorization.k8s.io", "v1", "LocalSubjectAccessReview",
                                         "localsubjectaccessreviews", "localsubjectaccessreview",
                                         True, "SubjectAccessReview")
SELFSUBJECTRULESREVIEWS = ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview",
                                       "selfsubjectrulesreviews", "selfsubjectrulesreview", False,
                                       "SelfSubjectRulesReview")
SELFSUBJECTREVIEWS = ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview",
                                  "selfsubjectreviews", "selfsubjectreview", False,
                                  "SelfSubjectReview")
REVIEWS: tuple[ResourceType, ...] = (SUBJECTACCESSREVIEWS, SELFSUBJECTACCESSREVIEWS,
                                     LOCALSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS,
                                     SELFSUBJECTREVIEWS)
# Everything the API serves: the stored kinds, then the reviews.
SERVED: tuple[ResourceType, ...] = ALL + REVIEWS


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in SERVED:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in ALL:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def lookup(name: str) -> ResourceType | None:
    """Resolve what a user types (`svc`, `pods`, `deployment.apps`, `EndpointSlice`)."""
    n = name.lower()
    group = None
    if "." in n:
        n, group = n.split(".", 1)
    for rt in ALL:
        if group is not None and rt.group != group:
            continue
        if n in (rt.plural, rt.singular, rt.kind.lower()) or n in rt.short_names:
            return rt
    return None


def groups() -> dict[str, list[str]]:
    """API groups (named, not core) and their versions."""
    out: dict[str, list[str]] = {}
    for rt in SERVED:
        if rt.group and rt.version not in out.setdefault(rt.group, []):
            out[rt.group].append(rt.version)
    return out
