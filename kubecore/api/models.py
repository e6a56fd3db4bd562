"""Pydantic models of the API types the cluster stores.

They check the *shape* of what clients send (types, required fields). The
stored object stays the client's JSON with defaults filled in: the models
never rewrite it, so fields this project does not know survive a round trip
(kubectl sends many). Semantic rules (names, ranges, immutability) live in
`kubecore.api.validation`, one module per API group.

Models marked `_complete = True` name every field of the Kubernetes type (those this
project does not check are typed `Any`), so `unknown_fields` can report a misspelt
field the way kube-apiserver's strict decoding does. Models without the mark only
check what they declare and let anything else through.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

IntOrString = StrictInt | StrictStr


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    _complete: ClassVar[bool] = False


class _Complete(_Model):
    """A model that lists every field of its Kubernetes type."""
    _complete: ClassVar[bool] = True


class ManagedFieldsEntry(_Model):
    manager: StrictStr | None = None
    operation: StrictStr | None = None
    apiVersion: StrictStr | None = None
    time: StrictStr | None = None
    fieldsType: StrictStr | None = None
    fieldsV1: dict[str, Any] | None = None
    subresource: StrictStr | None = None


class OwnerReference(_Complete):
    apiVersion: StrictStr
    kind: StrictStr
    name: StrictStr
    uid: StrictStr
    controller: StrictBool | None = None
    blockOwnerDeletion: StrictBool | None = None


class ObjectMeta(_Complete):
    name: StrictStr | None = None
    generateName: StrictStr | None = None
    namespace: StrictStr | None = None
    uid: StrictStr | None = None
    resourceVersion: StrictStr | None = None
    generation: StrictInt | None = None
    creationTimestamp: StrictStr | None = None
    deletionTimestamp: StrictStr | None = None
    deletionGracePeriodSeconds: StrictInt | None = None
    labels: dict[StrictStr, StrictStr] | None = None
    annotations: dict[StrictStr, StrictStr] | None = None
    ownerReferences: list[OwnerReference] | None = None
    finalizers: list[StrictStr] | None = None
    managedFields: list[ManagedFieldsEntry] | None = None
    selfLink: StrictStr | None = None


class LabelSelectorRequirement(_Complete):
    key: StrictStr
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[StrictStr] | None = None


class LabelSelector(_Complete):
    matchLabels: dict[StrictStr, StrictStr] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


# --- core/v1 Service ---------------------------------------------------------

class ServicePort(_Complete):
    name: StrictStr | None = None
    protocol: StrictStr | None = None
    port: StrictInt
    targetPort: IntOrString | None = None
    nodePort: StrictInt | None = None
    appProtocol: StrictStr | None = None


class ClientIPConfig(_Complete):
    timeoutSeconds: StrictInt | None = None


class SessionAffinityConfig(_Complete):
    clientIP: ClientIPConfig | None = None


class ServiceSpec(_Complete):
    type: StrictStr | None = None
    ports: list[ServicePort] | None = None
    selector: dict[StrictStr, StrictStr] | None = None
    clusterIP: StrictStr | None = None
    clusterIPs: list[StrictStr] | None = None
    externalIPs: list[StrictStr] | None = None
    externalName: StrictStr | None = None
    sessionAffinity: StrictStr | None = None
    sessionAffinityConfig: SessionAffinityConfig | None = None
    externalTrafficPolicy: StrictStr | None = None
    internalTrafficPolicy: StrictStr | None = None
    healthCheckNodePort: StrictInt | None = None
    publishNotReadyAddresses: StrictBool | None = None
    loadBalancerIP: StrictStr | None = None
    loadBalancerClass: StrictStr | None = None
    allocateLoadBalancerNodePorts: StrictBool | None = None
    ipFamilies: list[StrictStr] | None = None
    ipFamilyPolicy: StrictStr | None = None
    # not served by this project, accepted so real manifests pass strict decoding
    loadBalancerSourceRanges: Any | None = None
    trafficDistribution: Any | None = None


class PortStatus(_Complete):
    port: StrictInt
    protocol: StrictStr
    error: StrictStr | None = None


class LoadBalancerIngress(_Complete):
    ip: StrictStr | None = None
    hostname: StrictStr | None = None
    ipMode: StrictStr | None = None
    ports: list[PortStatus] | None = None


class LoadBalancerStatus(_Complete):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(_Complete):
    loadBalancer: LoadBalancerStatus | None = None
    conditions: list[dict[str, Any]] | None = None


class Service(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None


# --- core/v1 Pod --------------------------------------------------------------

class EnvVar(_Complete):
    name: StrictStr
    value: StrictStr | None = None
    valueFrom: dict[str, Any] | None = None


class ContainerPort(_Complete):
    name: StrictStr | None = None
    containerPort: StrictInt
    protocol: StrictStr | None = None
    hostPort: StrictInt | None = None
    hostIP: StrictStr | None = None


class HTTPGetAction(_Model):
    path: StrictStr | None = None
    port: IntOrString
    host: StrictStr | None = None
    scheme: StrictStr | None = None


class TCPSocketAction(_Model):
    port: IntOrString
    host: StrictStr | None = None


class ExecAction(_Model):
    command: list[StrictStr] | None = None


class Probe(_Model):
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    exec: ExecAction | None = None
    initialDelaySeconds: StrictInt | None = None
    periodSeconds: StrictInt | None = None
    timeoutSeconds: StrictInt | None = None
    successThreshold: StrictInt | None = None
    failureThreshold: StrictInt | None = None


class Container(_Complete):
    name: StrictStr
    image: StrictStr | None = None
    command: list[StrictStr] | None = None
    args: list[StrictStr] | None = None
    workingDir: StrictStr | None = None
    env: list[EnvVar] | None = None
    ports: list[ContainerPort] | None = None
    readinessProbe: Probe | None = None
    livenessProbe: Probe | None = None
    startupProbe: Probe | None = None
    imagePullPolicy: StrictStr | None = None
    resources: dict[str, Any] | None = None
    envFrom: Any | None = None
    resizePolicy: Any | None = None
    restartPolicy: Any | None = None
    volumeMounts: Any | None = None
    volumeDevices: Any | None = None
    lifecycle: Any | None = None
    terminationMessagePath: Any | None = None
    terminationMessagePolicy: Any | None = None
    securityContext: Any | None = None
    stdin: Any | None = None
    stdinOnce: Any | None = None
    tty: Any | None = None


class PodSpec(_Complete):
    containers: list[Container]
    initContainers: list[Container] | None = None
    nodeName: StrictStr | None = None
    nodeSelector: dict[StrictStr, StrictStr] | None = None
    restartPolicy: StrictStr | None = None
    terminationGracePeriodSeconds: StrictInt | None = None
    hostname: StrictStr | None = None
    subdomain: StrictStr | None = None
    hostNetwork: StrictBool | None = None
    dnsPolicy: StrictStr | None = None
    schedulerName: StrictStr | None = None
    volumes: Any | None = None
    ephemeralContainers: Any | None = None
    activeDeadlineSeconds: Any | None = None
    serviceAccountName: Any | None = None
    serviceAccount: Any | None = None
    automountServiceAccountToken: Any | None = None
    hostPID: Any | None = None
    hostIPC: Any | None = None
    shareProcessNamespace: Any | None = None
    securityContext: Any | None = None
    imagePullSecrets: Any | None = None
    affinity: Any | None = None
    tolerations: Any | None = None
    hostAliases: Any | None = None
    priorityClassName: Any | None = None
    priority: Any | None = None
    dnsConfig: Any | None = None
    readinessGates: Any | None = None
    runtimeClassName: Any | None = None
    enableServiceLinks: Any | None = None
    preemptionPolicy: Any | None = None
    overhead: Any | None = None
    topologySpreadConstraints: Any | None = None
    setHostnameAsFQDN: Any | None = None
    os: Any | None = None
    hostUsers: Any | None = None
    schedulingGates: Any | None = None
    resourceClaims: Any | None = None
    resources: Any | None = None


class Pod(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec
    status: dict[str, Any] | None = None


class PodTemplateSpec(_Complete):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


# --- core/v1 Node, Namespace ------------------------------------------------

class NodeSpec(_Model):
    podCIDR: StrictStr | None = None
    podCIDRs: list[StrictStr] | None = None
    unschedulable: StrictBool | None = None
    taints: list[dict[str, Any]] | None = None


class NodeAddress(_Complete):
    type: StrictStr
    address: StrictStr


class NodeStatus(_Model):
    """Only the addresses are checked: the API server dials one and nodes route through it."""
    addresses: list[NodeAddress] | None = None


class Node(_Model):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None


class Namespace(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


# --- core/v1 Secret ----------------------------------------------------------------

class Secret(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[StrictStr, StrictStr] | None = None
    stringData: dict[StrictStr, StrictStr] | None = None
    type: StrictStr | None = None
    immutable: StrictBool | None = None


# --- core/v1 ServiceAccount, ConfigMap -------------------------------------------

class ServiceAccount(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    secrets: list[dict[str, Any]] | None = None
    imagePullSecrets: list[dict[str, Any]] | None = None
    automountServiceAccountToken: StrictBool | None = None


class ConfigMap(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[StrictStr, StrictStr] | None = None
    binaryData: dict[StrictStr, StrictStr] | None = None  # base64 on the wire, as JSON []byte
    immutable: StrictBool | None = None


# --- discovery.k8s.io/v1 EndpointSlice ----------------------------------------

class EndpointConditions(_Model):
    ready: StrictBool | None = None
    serving: StrictBool | None = None
    terminating: StrictBool | None = None


class Endpoint(_Model):
    addresses: list[StrictStr]
    conditions: EndpointConditions | None = None
    hostname: StrictStr | None = None
    nodeName: StrictStr | None = None
    targetRef: dict[str, Any] | None = None
    zone: StrictStr | None = None


class EndpointPort(_Model):
    name: StrictStr | None = None
    protocol: StrictStr | None = None
    port: StrictInt | None = None
    appProtocol: StrictStr | None = None


class EndpointSlice(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    addressType: StrictStr
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None


# --- apps/v1 -------------------------------------------------------------------

class ReplicaSetSpec(_Complete):
    replicas: StrictInt | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    minReadySeconds: StrictInt | None = None


class ReplicaSet(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec
    status: dict[str, Any] | None = None


class DeploymentSpec(_Complete):
    replicas: StrictInt | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: dict[str, Any] | None = None
    minReadySeconds: StrictInt | None = None
    revisionHistoryLimit: StrictInt | None = None
    paused: StrictBool | None = None
    progressDeadlineSeconds: StrictInt | None = None


class Deployment(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: dict[str, Any] | None = None


class RollingUpdateStatefulSetStrategy(_Complete):
    partition: StrictInt | None = None
    maxUnavailable: IntOrString | None = None


class StatefulSetUpdateStrategy(_Complete):
    type: StrictStr | None = None
    rollingUpdate: RollingUpdateStatefulSetStrategy | None = None


class StatefulSetPersistentVolumeClaimRetentionPolicy(_Complete):
    whenDeleted: StrictStr | None = None
    whenScaled: StrictStr | None = None


class StatefulSetOrdinals(_Complete):
    start: StrictInt | None = None


class StatefulSetSpec(_Complete):
    replicas: StrictInt | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    # PersistentVolumeClaim templates: stored as given (no storage provisioner serves them)
    volumeClaimTemplates: list[dict[str, Any]] | None = None
    serviceName: StrictStr | None = None
    podManagementPolicy: StrictStr | None = None
    updateStrategy: StatefulSetUpdateStrategy | None = None
    revisionHistoryLimit: StrictInt | None = None
    minReadySeconds: StrictInt | None = None
    persistentVolumeClaimRetentionPolicy: StatefulSetPersistentVolumeClaimRetentionPolicy | None = None
    ordinals: StatefulSetOrdinals | None = None


class StatefulSet(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: StatefulSetSpec
    status: dict[str, Any] | None = None


class ControllerRevision(_Complete):
    """An immutable snapshot of a StatefulSet's or DaemonSet's pod template (`data`, a
    patch the controller can re-apply) and its `revision` number: their rollout history."""
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: Any = None
    revision: StrictInt


class RollingUpdateDaemonSet(_Complete):
    maxUnavailable: IntOrString | None = None
    maxSurge: IntOrString | None = None


class DaemonSetUpdateStrategy(_Complete):
    type: StrictStr | None = None
    rollingUpdate: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(_Complete):
    selector: LabelSelector
    template: PodTemplateSpec
    updateStrategy: DaemonSetUpdateStrategy | None = None
    minReadySeconds: StrictInt | None = None
    revisionHistoryLimit: StrictInt | None = None


class DaemonSetStatus(_Complete):
    currentNumberScheduled: StrictInt | None = None
    numberMisscheduled: StrictInt | None = None
    desiredNumberScheduled: StrictInt | None = None
    numberReady: StrictInt | None = None
    observedGeneration: StrictInt | None = None
    updatedNumberScheduled: StrictInt | None = None
    numberAvailable: StrictInt | None = None
    numberUnavailable: StrictInt | None = None
    collisionCount: StrictInt | None = None
    conditions: list[dict[str, Any]] | None = None


class DaemonSet(_Complete):
    """One pod per node that should run it; rolled out by revisions (ControllerRevisions)."""
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DaemonSetSpec
    status: DaemonSetStatus | None = None


# --- batch/v1 ------------------------------------------------------------------------

class JobSpec(_Complete):
    parallelism: StrictInt | None = None
    completions: StrictInt | None = None
    activeDeadlineSeconds: StrictInt | None = None
    backoffLimit: StrictInt | None = None
    selector: LabelSelector | None = None
    manualSelector: StrictBool | None = None
    template: PodTemplateSpec
    ttlSecondsAfterFinished: StrictInt | None = None
    completionMode: StrictStr | None = None
    suspend: StrictBool | None = None
    podReplacementPolicy: StrictStr | None = None
    # accepted so real manifests pass strict decoding; the controller does not act on them
    podFailurePolicy: Any | None = None
    successPolicy: Any | None = None
    backoffLimitPerIndex: Any | None = None
    maxFailedIndexes: Any | None = None
    managedBy: Any | None = None


class Job(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec
    status: dict[str, Any] | None = None


class JobTemplateSpec(_Complete):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec


class CronJobSpec(_Complete):
    schedule: StrictStr
    timeZone: StrictStr | None = None
    startingDeadlineSeconds: StrictInt | None = None
    concurrencyPolicy: StrictStr | None = None
    suspend: StrictBool | None = None
    jobTemplate: JobTemplateSpec
    successfulJobsHistoryLimit: StrictInt | None = None
    failedJobsHistoryLimit: StrictInt | None = None


class CronJob(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CronJobSpec
    status: dict[str, Any] | None = None


# --- coordination.k8s.io/v1 Lease ------------------------------------------------------

class LeaseSpec(_Complete):
    """Who holds a lease and until when; acquireTime and renewTime are MicroTimes
    (RFC 3339 with microseconds), checked and normalised by `kubecore.api.leases`."""
    holderIdentity: StrictStr | None = None
    leaseDurationSeconds: StrictInt | None = None
    acquireTime: StrictStr | None = None
    renewTime: StrictStr | None = None
    leaseTransitions: StrictInt | None = None
    strategy: StrictStr | None = None
    preferredHolder: StrictStr | None = None


class Lease(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LeaseSpec | None = None


# --- networking.k8s.io/v1 NetworkPolicy ---------------------------------------------------

class NetworkPolicyPort(_Complete):
    protocol: StrictStr | None = None
    port: IntOrString | None = None
    endPort: StrictInt | None = None


class IPBlock(_Complete):
    cidr: StrictStr
    except_: list[StrictStr] | None = Field(default=None, alias="except")


class NetworkPolicyPeer(_Complete):
    podSelector: LabelSelector | None = None
    namespaceSelector: LabelSelector | None = None
    ipBlock: IPBlock | None = None


class NetworkPolicyIngressRule(_Complete):
    ports: list[NetworkPolicyPort] | None = None
    from_: list[NetworkPolicyPeer] | None = Field(default=None, alias="from")


class NetworkPolicyEgressRule(_Complete):
    ports: list[NetworkPolicyPort] | None = None
    to: list[NetworkPolicyPeer] | None = None


class NetworkPolicySpec(_Complete):
    podSelector: LabelSelector | None = None
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None
    policyTypes: list[StrictStr] | None = None


class NetworkPolicy(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NetworkPolicySpec | None = None


# --- core/v1 Event ----------------------------------------------------------------------

class ObjectReference(_Model):
    kind: StrictStr | None = None
    namespace: StrictStr | None = None
    name: StrictStr | None = None
    uid: StrictStr | None = None
    apiVersion: StrictStr | None = None
    resourceVersion: StrictStr | None = None
    fieldPath: StrictStr | None = None


class Event(_Model):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    involvedObject: ObjectReference
    reason: StrictStr | None = None
    message: StrictStr | None = None
    type: StrictStr | None = None
    count: StrictInt | None = None
    firstTimestamp: StrictStr | None = None
    lastTimestamp: StrictStr | None = None
    source: dict[str, Any] | None = None


class Binding(_Model):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    target: dict[str, Any]



# --- core/v1 Endpoints ------------------------------------------------------------------

class EndpointAddress(_Complete):
    ip: StrictStr
    hostname: StrictStr | None = None
    nodeName: StrictStr | None = None
    targetRef: ObjectReference | None = None


class EndpointsPort(_Complete):
    """core/v1 EndpointPort (discovery's EndpointPort above is another type)."""
    name: StrictStr | None = None
    port: StrictInt
    protocol: StrictStr | None = None
    appProtocol: StrictStr | None = None


class EndpointSubset(_Complete):
    addresses: list[EndpointAddress] | None = None
    notReadyAddresses: list[EndpointAddress] | None = None
    ports: list[EndpointsPort] | None = None


class Endpoints(_Complete):
    """A Service's endpoints, the pre-EndpointSlice way: one object named as the Service,
    its addresses grouped into subsets that share ports."""
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subsets: list[EndpointSubset] | None = None


# --- rbac.authorization.k8s.io/v1 --------------------------------------------------------

class PolicyRule(_Complete):
    verbs: list[StrictStr] | None = None
    apiGroups: list[StrictStr] | None = None
    resources: list[StrictStr] | None = None
    resourceNames: list[StrictStr] | None = None
    nonResourceURLs: list[StrictStr] | None = None


class AggregationRule(_Complete):
    clusterRoleSelectors: list[LabelSelector] | None = None


class Subject(_Complete):
    kind: StrictStr | None = None
    apiGroup: StrictStr | None = None
    name: StrictStr | None = None
    namespace: StrictStr | None = None


class RoleRef(_Complete):
    apiGroup: StrictStr | None = None
    kind: StrictStr | None = None
    name: StrictStr | None = None


class Role(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    rules: list[PolicyRule] | None = None


class ClusterRole(Role):
    aggregationRule: AggregationRule | None = None


class RoleBinding(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subjects: list[Subject] | None = None
    roleRef: RoleRef | None = None  # required: validation says so in kube's words


# --- authorization.k8s.io/v1 and authentication.k8s.io/v1 reviews (created, never stored) ----

class ResourceAttributes(_Model):
    namespace: StrictStr | None = None
    verb: StrictStr | None = None
    group: StrictStr | None = None
    version: StrictStr | None = None
    resource: StrictStr | None = None
    subresource: StrictStr | None = None
    name: StrictStr | None = None


class NonResourceAttributes(_Complete):
    path: StrictStr | None = None
    verb: StrictStr | None = None


class SubjectAccessReviewSpec(_Complete):
    resourceAttributes: ResourceAttributes | None = None
    nonResourceAttributes: NonResourceAttributes | None = None
    user: StrictStr | None = None
    groups: list[StrictStr] | None = None
    extra: dict[StrictStr, list[StrictStr]] | None = None
    uid: StrictStr | None = None


class SubjectAccessReview(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SubjectAccessReviewSpec | None = None
    status: dict[str, Any] | None = None


class SelfSubjectRulesReviewSpec(_Complete):
    namespace: StrictStr | None = None


class SelfSubjectRulesReview(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SelfSubjectRulesReviewSpec | None = None
    status: dict[str, Any] | None = None


class SelfSubjectReview(_Complete):
    apiVersion: StrictStr | None = None
    kind: StrictStr | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    status: dict[str, Any] | None = None


def shape_causes(model: type[BaseModel], obj: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate `obj` against `model`; return (field path, message) pairs."""
    from pydantic import ValidationError

    try:
        model.model_validate(obj)
    except ValidationError as exc:
        out: list[tuple[str, str]] = []
        for err in exc.errors():
            path = ""
            for part in err["loc"]:
                if isinstance(part, int):
                    path += f"[{part}]"
                elif part in ("int", "str", "function-after[...]") or "[" in str(part):
                    continue  # union member tags
                else:
                    path += ("." if path else "") + str(part)
            msg = err["msg"]
            if out and out[-1][0] == path and len(err["loc"]) and str(err["loc"][-1]) == "str":
                msg = "must be an integer or a string"
                out[-1] = (path, msg)
                continue
            out.append((path, msg))
        return out
    return []


# --- unknown fields (strict decoding) -------------------------------------------------

@cache
def _fields_of(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


Check = Callable[[Any, str, list[str]], None]


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


@cache
def _checker(tp: Any) -> Check | None:
    """A function reporting unknown fields under a value of type `tp`, built once per
    type (this runs on every write); None where nothing below can be unknown."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:  # Optional[X] and X | None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                return _checker(arg)
        return None
    if origin is list:
        args = typing.get_args(tp)
        item = _checker(args[0]) if args else None
        if item is None:
            return None

        def check_list(value: Any, path: str, out: list[str]) -> None:
            if isinstance(value, list):
                for i, v in enumerate(value):
                    item(v, f"{path}[{i}]", out)
        return check_list
    if origin is dict:
        args = typing.get_args(tp)
        member = _checker(args[1]) if len(args) == 2 else None
        if member is None:
            return None

        def check_dict(value: Any, path: str, out: list[str]) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    member(v, _join(path, k), out)
        return check_dict
    if isinstance(tp, type) and issubclass(tp, _Model):
        return _model_checker(tp)
    return None


def _model_checker(model: type[_Model]) -> Check:
    fields: dict[str, Check | None] | None = None  # filled on first use: models may nest
    complete = model._complete

    def check_model(value: Any, path: str, out: list[str]) -> None:
        nonlocal fields
        if not isinstance(value, dict):
            return
        if fields is None:
            fields = {name: _checker(tp) for name, tp in _fields_of(model).items()}
        for key, v in value.items():
            if key in fields:
                check = fields[key]
                if check is not None:
                    check(v, _join(path, key), out)
            elif complete:
                out.append(_join(path, key))
    return check_model


def unknown_fields(model: type[BaseModel], obj: Any) -> list[str]:
    """Paths of fields `obj` has that the Kubernetes type does not, as kube-apiserver's
    strict decoder names them (`spec.ports[0].bogus`). Only complete models report."""
    out: list[str] = []
    check = _checker(model)
    if check is not None:
        check(obj, "", out)
    return out
