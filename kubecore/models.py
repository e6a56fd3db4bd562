"""Pydantic models of the API types the cluster stores.

They check the *shape* of what clients send (types, required fields). The
stored object stays the client's JSON with defaults filled in: the models
never rewrite it, so fields this project does not know survive a round trip
(kubectl sends many). Semantic rules (names, ranges, immutability) live in
`kubecore.resources`, next to each resource's declaration.

Models marked `_complete = True` name every field of the Kubernetes type (those this
project does not check are typed `Any`), so `unknown_fields` can report a misspelt
field the way kube-apiserver's strict decoding does. Models without the mark only
check what they declare and let anything else through.
"""
from __future__ import annotations

import typing
from functools import lru_cache
from typing import Any, Callable, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

IntOrString = Union[StrictInt, StrictStr]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    _complete: ClassVar[bool] = False


class _Complete(_Model):
    """A model that lists every field of its Kubernetes type."""
    _complete: ClassVar[bool] = True


class ManagedFieldsEntry(_Model):
    manager: Optional[StrictStr] = None
    operation: Optional[StrictStr] = None
    apiVersion: Optional[StrictStr] = None
    time: Optional[StrictStr] = None
    fieldsType: Optional[StrictStr] = None
    fieldsV1: Optional[dict[str, Any]] = None
    subresource: Optional[StrictStr] = None


class OwnerReference(_Complete):
    apiVersion: StrictStr
    kind: StrictStr
    name: StrictStr
    uid: StrictStr
    controller: Optional[StrictBool] = None
    blockOwnerDeletion: Optional[StrictBool] = None


class ObjectMeta(_Complete):
    name: Optional[StrictStr] = None
    generateName: Optional[StrictStr] = None
    namespace: Optional[StrictStr] = None
    uid: Optional[StrictStr] = None
    resourceVersion: Optional[StrictStr] = None
    generation: Optional[StrictInt] = None
    creationTimestamp: Optional[StrictStr] = None
    deletionTimestamp: Optional[StrictStr] = None
    deletionGracePeriodSeconds: Optional[StrictInt] = None
    labels: Optional[dict[StrictStr, StrictStr]] = None
    annotations: Optional[dict[StrictStr, StrictStr]] = None
    ownerReferences: Optional[list[OwnerReference]] = None
    finalizers: Optional[list[StrictStr]] = None
    managedFields: Optional[list[ManagedFieldsEntry]] = None
    selfLink: Optional[StrictStr] = None


class LabelSelectorRequirement(_Complete):
    key: StrictStr
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Optional[list[StrictStr]] = None


class LabelSelector(_Complete):
    matchLabels: Optional[dict[StrictStr, StrictStr]] = None
    matchExpressions: Optional[list[LabelSelectorRequirement]] = None


# --- core/v1 Service ---------------------------------------------------------

class ServicePort(_Complete):
    name: Optional[StrictStr] = None
    protocol: Optional[StrictStr] = None
    port: StrictInt
    targetPort: Optional[IntOrString] = None
    nodePort: Optional[StrictInt] = None
    appProtocol: Optional[StrictStr] = None


class ServiceSpec(_Complete):
    type: Optional[StrictStr] = None
    ports: Optional[list[ServicePort]] = None
    selector: Optional[dict[StrictStr, StrictStr]] = None
    clusterIP: Optional[StrictStr] = None
    clusterIPs: Optional[list[StrictStr]] = None
    externalIPs: Optional[list[StrictStr]] = None
    sessionAffinity: Optional[StrictStr] = None
    externalTrafficPolicy: Optional[StrictStr] = None
    internalTrafficPolicy: Optional[StrictStr] = None
    publishNotReadyAddresses: Optional[StrictBool] = None
    # not served by this project, accepted so real manifests pass strict decoding
    loadBalancerIP: Optional[Any] = None
    loadBalancerSourceRanges: Optional[Any] = None
    loadBalancerClass: Optional[Any] = None
    allocateLoadBalancerNodePorts: Optional[Any] = None
    externalName: Optional[Any] = None
    healthCheckNodePort: Optional[Any] = None
    sessionAffinityConfig: Optional[Any] = None
    ipFamilies: Optional[Any] = None
    ipFamilyPolicy: Optional[Any] = None
    trafficDistribution: Optional[Any] = None


class Service(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: Optional[dict[str, Any]] = None


# --- core/v1 Pod --------------------------------------------------------------

class EnvVar(_Complete):
    name: StrictStr
    value: Optional[StrictStr] = None
    valueFrom: Optional[dict[str, Any]] = None


class ContainerPort(_Complete):
    name: Optional[StrictStr] = None
    containerPort: StrictInt
    protocol: Optional[StrictStr] = None
    hostPort: Optional[StrictInt] = None
    hostIP: Optional[StrictStr] = None


class HTTPGetAction(_Model):
    path: Optional[StrictStr] = None
    port: IntOrString
    host: Optional[StrictStr] = None
    scheme: Optional[StrictStr] = None


class TCPSocketAction(_Model):
    port: IntOrString
    host: Optional[StrictStr] = None


class ExecAction(_Model):
    command: Optional[list[StrictStr]] = None


class Probe(_Model):
    httpGet: Optional[HTTPGetAction] = None
    tcpSocket: Optional[TCPSocketAction] = None
    exec: Optional[ExecAction] = None
    initialDelaySeconds: Optional[StrictInt] = None
    periodSeconds: Optional[StrictInt] = None
    timeoutSeconds: Optional[StrictInt] = None
    successThreshold: Optional[StrictInt] = None
    failureThreshold: Optional[StrictInt] = None


class Container(_Complete):
    name: StrictStr
    image: Optional[StrictStr] = None
    command: Optional[list[StrictStr]] = None
    args: Optional[list[StrictStr]] = None
    workingDir: Optional[StrictStr] = None
    env: Optional[list[EnvVar]] = None
    ports: Optional[list[ContainerPort]] = None
    readinessProbe: Optional[Probe] = None
    livenessProbe: Optional[Probe] = None
    startupProbe: Optional[Probe] = None
    imagePullPolicy: Optional[StrictStr] = None
    resources: Optional[dict[str, Any]] = None
    envFrom: Optional[Any] = None
    resizePolicy: Optional[Any] = None
    restartPolicy: Optional[Any] = None
    volumeMounts: Optional[Any] = None
    volumeDevices: Optional[Any] = None
    lifecycle: Optional[Any] = None
    terminationMessagePath: Optional[Any] = None
    terminationMessagePolicy: Optional[Any] = None
    securityContext: Optional[Any] = None
    stdin: Optional[Any] = None
    stdinOnce: Optional[Any] = None
    tty: Optional[Any] = None


class PodSpec(_Complete):
    containers: list[Container]
    initContainers: Optional[list[Container]] = None
    nodeName: Optional[StrictStr] = None
    nodeSelector: Optional[dict[StrictStr, StrictStr]] = None
    restartPolicy: Optional[StrictStr] = None
    terminationGracePeriodSeconds: Optional[StrictInt] = None
    hostname: Optional[StrictStr] = None
    subdomain: Optional[StrictStr] = None
    hostNetwork: Optional[StrictBool] = None
    dnsPolicy: Optional[StrictStr] = None
    schedulerName: Optional[StrictStr] = None
    volumes: Optional[Any] = None
    ephemeralContainers: Optional[Any] = None
    activeDeadlineSeconds: Optional[Any] = None
    serviceAccountName: Optional[Any] = None
    serviceAccount: Optional[Any] = None
    automountServiceAccountToken: Optional[Any] = None
    hostPID: Optional[Any] = None
    hostIPC: Optional[Any] = None
    shareProcessNamespace: Optional[Any] = None
    securityContext: Optional[Any] = None
    imagePullSecrets: Optional[Any] = None
    affinity: Optional[Any] = None
    tolerations: Optional[Any] = None
    hostAliases: Optional[Any] = None
    priorityClassName: Optional[Any] = None
    priority: Optional[Any] = None
    dnsConfig: Optional[Any] = None
    readinessGates: Optional[Any] = None
    runtimeClassName: Optional[Any] = None
    enableServiceLinks: Optional[Any] = None
    preemptionPolicy: Optional[Any] = None
    overhead: Optional[Any] = None
    topologySpreadConstraints: Optional[Any] = None
    setHostnameAsFQDN: Optional[Any] = None
    os: Optional[Any] = None
    hostUsers: Optional[Any] = None
    schedulingGates: Optional[Any] = None
    resourceClaims: Optional[Any] = None
    resources: Optional[Any] = None


class Pod(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec
    status: Optional[dict[str, Any]] = None


class PodTemplateSpec(_Complete):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


# --- core/v1 Node, Namespace ------------------------------------------------

class NodeSpec(_Model):
    podCIDR: Optional[StrictStr] = None
    podCIDRs: Optional[list[StrictStr]] = None
    unschedulable: Optional[StrictBool] = None
    taints: Optional[list[dict[str, Any]]] = None


class Node(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: Optional[dict[str, Any]] = None


class Namespace(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: Optional[dict[str, Any]] = None
    status: Optional[dict[str, Any]] = None


# --- discovery.k8s.io/v1 EndpointSlice ----------------------------------------

class EndpointConditions(_Model):
    ready: Optional[StrictBool] = None
    serving: Optional[StrictBool] = None
    terminating: Optional[StrictBool] = None


class Endpoint(_Model):
    addresses: list[StrictStr]
    conditions: Optional[EndpointConditions] = None
    hostname: Optional[StrictStr] = None
    nodeName: Optional[StrictStr] = None
    targetRef: Optional[dict[str, Any]] = None
    zone: Optional[StrictStr] = None


class EndpointPort(_Model):
    name: Optional[StrictStr] = None
    protocol: Optional[StrictStr] = None
    port: Optional[StrictInt] = None
    appProtocol: Optional[StrictStr] = None


class EndpointSlice(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    addressType: StrictStr
    endpoints: Optional[list[Endpoint]] = None
    ports: Optional[list[EndpointPort]] = None


# --- apps/v1 -------------------------------------------------------------------

class ReplicaSetSpec(_Complete):
    replicas: Optional[StrictInt] = None
    selector: LabelSelector
    template: PodTemplateSpec
    minReadySeconds: Optional[StrictInt] = None


class ReplicaSet(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec
    status: Optional[dict[str, Any]] = None


class DeploymentSpec(_Complete):
    replicas: Optional[StrictInt] = None
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: Optional[dict[str, Any]] = None
    minReadySeconds: Optional[StrictInt] = None
    revisionHistoryLimit: Optional[StrictInt] = None
    paused: Optional[StrictBool] = None
    progressDeadlineSeconds: Optional[StrictInt] = None


class Deployment(_Complete):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: Optional[dict[str, Any]] = None


# --- core/v1 Event ----------------------------------------------------------------------

class ObjectReference(_Model):
    kind: Optional[StrictStr] = None
    namespace: Optional[StrictStr] = None
    name: Optional[StrictStr] = None
    uid: Optional[StrictStr] = None
    apiVersion: Optional[StrictStr] = None
    resourceVersion: Optional[StrictStr] = None
    fieldPath: Optional[StrictStr] = None


class Event(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    involvedObject: ObjectReference
    reason: Optional[StrictStr] = None
    message: Optional[StrictStr] = None
    type: Optional[StrictStr] = None
    count: Optional[StrictInt] = None
    firstTimestamp: Optional[StrictStr] = None
    lastTimestamp: Optional[StrictStr] = None
    source: Optional[dict[str, Any]] = None


class Binding(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    target: dict[str, Any]


def shape_causes(model: type[BaseModel], obj: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate `obj` against `model`; return (field path, message) pairs."""
    from pydantic import ValidationError

    try:
        model.model_validate(obj)
    except ValidationError as exc:
        out = []
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

@lru_cache(maxsize=None)
def _fields_of(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


Check = Callable[[Any, str, list[str]], None]


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


@lru_cache(maxsize=None)
def _checker(tp: Any) -> Check | None:
    """A function reporting unknown fields under a value of type `tp`, built once per
    type (this runs on every write); None where nothing below can be unknown."""
    origin = typing.get_origin(tp)
    if origin is Union:
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
