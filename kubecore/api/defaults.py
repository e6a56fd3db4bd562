"""What the API server fills in on every write before validating (kubernetes'
`pkg/apis/<group>/v1/defaults.go`), one `default_<kind>` per kind, grouped as the API groups are.

Defaulting changes the object in place and only adds what is missing (or null: an explicit
null counts as absent), so the client's own fields, known or not, survive.
"""
from __future__ import annotations

from typing import Any

from kubecore.api import servicespec
from kubecore.api.types import Obj


def _child(obj: Obj, key: str, default: Any = None) -> Any:
    """obj[key], set to `default` (a new dict unless given) when missing or null, as
    defaulting treats an explicit null like an absent field."""
    if obj.get(key) is None:
        obj[key] = {} if default is None else default
    return obj[key]


# --- core/v1 -----------------------------------------------------------------------------

def default_service(obj: Obj) -> None:
    """SetDefaults_Service: ClientIP affinity gets its 3-hour timeout, externally accessible
    Services an externalTrafficPolicy, every type but ExternalName an internalTrafficPolicy,
    a LoadBalancer `allocateLoadBalancerNodePorts: true` and VIP as the ipMode of its
    ingress IPs."""
    spec = _child(obj, "spec", {})
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        _default_client_ip_timeout(spec)
    spec.setdefault("type", "ClusterIP")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
                port["targetPort"] = port["port"]
    if servicespec.externally_accessible(obj) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    _child(obj, "status", {"loadBalancer": {}})
    default_service_status(obj)


def _default_client_ip_timeout(spec: Obj) -> None:
    config = spec.get("sessionAffinityConfig")
    client_ip = config.get("clientIP") if isinstance(config, dict) else None
    if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}


CLIENT_IP_AFFINITY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds: 3 hours


def default_service_status(obj: Obj) -> None:
    """A LoadBalancer's ingress IPs without an ipMode are VIPs (also on /status writes)."""
    status = obj.get("status")
    if servicespec.service_type(obj) != "LoadBalancer" or not isinstance(status, dict):
        return
    lb = status.get("loadBalancer")
    for ingress in (lb.get("ingress") or []) if isinstance(lb, dict) else []:
        if isinstance(ingress, dict) and ingress.get("ip") and ingress.get("ipMode") is None:
            ingress["ipMode"] = "VIP"


def carry_over_service_allocations(new: Obj, old: Obj) -> None:
    """An update drops what the new type no longer uses (if the client left it unchanged)
    and keeps what was allocated and the client left out, as kube-apiserver does (so a type
    change releases node ports, and `kubectl apply` of the original manifest works)."""
    _child(new, "spec", {})
    servicespec.patch_allocated_values(new, old)
    servicespec.normalize_cluster_ips(new, old)
    servicespec.drop_type_dependent_fields(new, old)


def image_tag(image: str) -> str:
    """The tag kube's parsers.ParseImageName finds: the one written, "latest" when neither a tag
    nor a digest is, "" with only a digest."""
    if not image:
        return ""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[colon + 1:]
    return "" if digest else "latest"


def default_container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        # SetDefaults_Container: a moving tag is pulled every time
        c["imagePullPolicy"] = "Always" if image_tag(str(c.get("image") or "")) == "latest" else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            default_container(c)


def default_pod(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    default_pod_spec(spec)
    if spec.get("hostNetwork") is True:
        _default_host_network_ports(spec)
    status = _child(obj, "status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _default_host_network_ports(spec: Obj) -> None:
    """A Pod on the node's network binds its container ports on the node: an unset hostPort is
    the containerPort (SetDefaults_Pod; templates keep theirs unset)."""
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in (c.get("ports") or []) if isinstance(c, dict) else []:
            if isinstance(p, dict) and not p.get("hostPort"):
                p["hostPort"] = p.get("containerPort")


def default_node(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    _child(obj, "status", {})
    # kube keeps one list of pod ranges: podCIDRs, from podCIDR when only that is given;
    # podCIDR is its first entry. So the two never disagree in what is stored.
    cidrs = spec.get("podCIDRs")
    if cidrs:
        spec["podCIDR"] = cidrs[0]
    elif spec.get("podCIDR"):
        spec["podCIDRs"] = [spec["podCIDR"]]


def default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_namespace(obj: Obj) -> None:
    _child(obj, "spec", {"finalizers": ["kubernetes"]})
    # kubectl sends `status: {}`: the phase is filled in all the same
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("phase", "Active")


# --- discovery.k8s.io/v1 ----------------------------------------------------------------------

def default_endpointslice(obj: Obj) -> None:
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("name", "")


def default_endpoints(obj: Obj) -> None:
    """SetDefaults_Endpoints: a port without a protocol is TCP."""
    for subset in obj.get("subsets") or []:
        for p in (subset.get("ports") or []) if isinstance(subset, dict) else []:
            if isinstance(p, dict) and not p.get("protocol"):
                p["protocol"] = "TCP"


# --- apps/v1 ------------------------------------------------------------------------------------

def default_workload(obj: Obj) -> None:
    """What a ReplicaSet and a Deployment both get: one replica, a defaulted pod template."""
    spec = _child(obj, "spec", {})
    spec.setdefault("replicas", 1)
    tmpl = _child(spec, "template", {})
    default_pod_spec(_child(tmpl, "spec", {}))
    _child(tmpl, "metadata", {})
    _child(obj, "status", {})


default_replicaset = default_workload


def default_deployment(obj: Obj) -> None:
    default_workload(obj)
    spec = obj["spec"]
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    if spec["strategy"].get("type", "RollingUpdate") == "RollingUpdate":
        spec["strategy"].setdefault("type", "RollingUpdate")
        ru = spec["strategy"].setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def default_statefulset(obj: Obj) -> None:
    """kube's SetDefaults_StatefulSet: OrderedReady, RollingUpdate from partition 0 (a
    RollingUpdate given without `rollingUpdate` stays without it, as there), Retain/Retain,
    one replica, 10 revisions kept. minReadySeconds is 0 and, as kube's omitempty, absent."""
    default_workload(obj)
    spec = obj["spec"]
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _child(spec, "updateStrategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _child(strategy, "rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            _child(rolling, "partition", 0)
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        for name in ("whenDeleted", "whenScaled"):
            if not retention.get(name):
                retention[name] = "Retain"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    # StatefulSetStatus's replicas and availableReplicas have no omitempty
    status = obj["status"]
    if isinstance(status, dict):
        status.setdefault("replicas", 0)
        status.setdefault("availableReplicas", 0)
# DaemonSets: the generation of the pod template, counted by the API server (kube's internal
# spec.templateGeneration, which apps/v1 carries as this annotation); the controller labels
# the pods it makes with it (`pod-template-generation`).
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def default_daemonset(obj: Obj) -> None:
    """SetDefaults_DaemonSet: RollingUpdate with maxUnavailable 1 and maxSurge 0, ten
    revisions kept; the status counts kube always writes (no omitempty) start at 0."""
    spec = _child(obj, "spec", {})
    tmpl = _child(spec, "template", {})
    default_pod_spec(_child(tmpl, "spec", {}))
    _child(tmpl, "metadata", {})
    strategy = _child(spec, "updateStrategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _child(strategy, "rollingUpdate", {})
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    status = _child(obj, "status", {})
    for counted in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                    "numberReady"):
        status.setdefault(counted, 0)


def daemonset_template_generation(new: Obj, old: Obj | None) -> None:
    """The DaemonSet strategy's template generation: at least 1 on create; on update the stored
    one (a client cannot set it), one more when the pod template changed."""
    annotations = _child(_child(new, "metadata", {}), "annotations", {})
    if old is None:
        given = annotations.get(TEMPLATE_GENERATION)
        if not (isinstance(given, str) and given.isdigit() and int(given) >= 1):
            annotations[TEMPLATE_GENERATION] = "1"
        return
    stored = ((old.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION, "1")
    generation = int(stored) if str(stored).isdigit() else 1
    if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
        generation += 1
    annotations[TEMPLATE_GENERATION] = str(generation)


# --- rbac.authorization.k8s.io/v1 ----------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"


def default_binding(obj: Obj) -> None:
    """RoleBinding and ClusterRoleBinding: roleRef.apiGroup is RBAC's when left out, and a
    User or Group subject's apiGroup too (kube's SetDefaults_RoleBinding, _Subject)."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup") \
                and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


# --- batch/v1 --------------------------------------------------------------------------------

def default_job_template(template: Obj) -> None:
    """The pod template inside a Job or a CronJob's jobTemplate (SetObjectDefaults_Job's
    pod defaults)."""
    default_pod_spec(_child(template, "spec", {}))
    _child(template, "metadata", {})


def default_job(obj: Obj) -> None:
    """SetDefaults_Job (kube 1.31): one pod to run to completion unless told otherwise, six
    retries, NonIndexed, not suspended, replacements once pods are terminating or failed,
    and the Job's labels from its template's when it has none."""
    spec = _child(obj, "spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    template = _child(spec, "template", {})
    default_job_template(template)
    labels = (template.get("metadata") or {}).get("labels")
    meta = _child(obj, "metadata", {})
    if isinstance(labels, dict) and labels and not meta.get("labels"):
        meta["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = ("Failed" if spec.get("podFailurePolicy") is not None
                                        else "TerminatingOrFailed")
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _child(obj, "status", {})


def default_cronjob(obj: Obj) -> None:
    """SetDefaults_CronJob: Allow, not suspended, keep 3 successful Jobs and 1 failed; the
    jobTemplate's pod template gets the pod defaults (its Job spec gets the Job's defaults
    only when the controller creates the Job)."""
    spec = _child(obj, "spec", {})
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = _child(spec, "jobTemplate", {})
    default_job_template(_child(_child(job_template, "spec", {}), "template", {}))
    _child(obj, "status", {})


# --- coordination.k8s.io/v1, networking.k8s.io/v1 ----------------------------------------------

def default_lease(obj: Obj) -> None:
    """A Lease always has a spec (Go writes the struct even when empty)."""
    _child(obj, "spec", {})


def default_networkpolicy(obj: Obj) -> None:
    """kube's SetDefaults_NetworkPolicy and _NetworkPolicyPort: policyTypes is Ingress, and
    Egress too when there are egress rules; a port's protocol is TCP. podSelector is not
    optional in v1 (an empty one selects every pod of the namespace)."""
    spec = _child(obj, "spec", {})
    _child(spec, "podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"
