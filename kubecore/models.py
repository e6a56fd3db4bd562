"""Pydantic models of the API types the cluster stores.

They check the *shape* of what clients send (types, required fields). The
stored object stays the client's JSON with defaults filled in: the models
never rewrite it, so fields this project does not know survive a round trip
(kubectl sends many). Semantic rules (names, ranges, immutability) live in
`kubecore.resources`, next to each resource's declaration.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

IntOrString = Union[StrictInt, StrictStr]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class OwnerReference(_Model):
    apiVersion: StrictStr
    kind: StrictStr
    name: StrictStr
    uid: StrictStr
    controller: Optional[StrictBool] = None
    blockOwnerDeletion: Optional[StrictBool] = None


class ObjectMeta(_Model):
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


class LabelSelectorRequirement(_Model):
    key: StrictStr
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Optional[list[StrictStr]] = None


class LabelSelector(_Model):
    matchLabels: Optional[dict[StrictStr, StrictStr]] = None
    matchExpressions: Optional[list[LabelSelectorRequirement]] = None


# --- core/v1 Service ---------------------------------------------------------

class ServicePort(_Model):
    name: Optional[StrictStr] = None
    protocol: Optional[StrictStr] = None
    port: StrictInt
    targetPort: Optional[IntOrString] = None
    nodePort: Optional[StrictInt] = None
    appProtocol: Optional[StrictStr] = None


class ServiceSpec(_Model):
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


class Service(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: Optional[dict[str, Any]] = None


# --- core/v1 Pod --------------------------------------------------------------

class EnvVar(_Model):
    name: StrictStr
    value: Optional[StrictStr] = None
    valueFrom: Optional[dict[str, Any]] = None


class ContainerPort(_Model):
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


class Container(_Model):
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


class PodSpec(_Model):
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


class Pod(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec
    status: Optional[dict[str, Any]] = None


class PodTemplateSpec(_Model):
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


class Namespace(_Model):
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


class EndpointSlice(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    addressType: StrictStr
    endpoints: Optional[list[Endpoint]] = None
    ports: Optional[list[EndpointPort]] = None


# --- apps/v1 -------------------------------------------------------------------

class ReplicaSetSpec(_Model):
    replicas: Optional[StrictInt] = None
    selector: LabelSelector
    template: PodTemplateSpec
    minReadySeconds: Optional[StrictInt] = None


class ReplicaSet(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec
    status: Optional[dict[str, Any]] = None


class DeploymentSpec(_Model):
    replicas: Optional[StrictInt] = None
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: Optional[dict[str, Any]] = None
    minReadySeconds: Optional[StrictInt] = None
    revisionHistoryLimit: Optional[StrictInt] = None
    paused: Optional[StrictBool] = None
    progressDeadlineSeconds: Optional[StrictInt] = None


class Deployment(_Model):
    apiVersion: Optional[StrictStr] = None
    kind: Optional[StrictStr] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: Optional[dict[str, Any]] = None


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
