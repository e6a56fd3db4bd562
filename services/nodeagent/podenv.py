"""A container's environment, command and arguments as kubelet makes them (pure).

kubelet's makeEnvironmentVariables (pkg/kubelet/kubelet_pods.go), in its order:
1. `envFrom`: every key of the ConfigMap or Secret (with the prefix), a key that is not a valid
   variable name skipped and told in an `InvalidEnvironmentVariableNames` Event;
2. `env`, in order, over those: a `value` has its `$(VAR)` references expanded against the
   variables declared so far and the Service variables; a `valueFrom` is resolved: a pod field
   (`fieldRef`), one of the container's resources (`resourceFieldRef`, limits defaulted to the
   node's allocatable), a ConfigMap or Secret key;
3. the Service variables (`envvars.service_env`) not already set.
Then `command` and `args` are expanded against that environment
(kubecontainer.ExpandContainerCommandAndArgs).

A required ConfigMap, Secret or key that is missing keeps the container from being created:
`ContainerConfigError`, whose message is kubelet's and whose reason (`CreateContainerConfigError`)
is the container's waiting reason. The objects are fetched by the caller (`references` says
which) and handed in, so all of this is table-tested.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubecore.api import formats, quantity
from kubecore.api.types import Obj

CONFIG_ERROR_REASON = "CreateContainerConfigError"
# Limits a container gets for the downward API when it has none: the node's allocatable.
DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")


class ContainerConfigError(Exception):
    """The container's configuration cannot be generated (kubelet's ErrCreateContainerConfig)."""

    reason = CONFIG_ERROR_REASON


@dataclass(frozen=True)
class EnvSources:
    """The ConfigMaps and Secrets a container refers to, by name; None: not found (404)."""

    configmaps: Mapping[str, Obj | None] = field(default_factory=dict)
    secrets: Mapping[str, Obj | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PodAddresses:
    """What `status.podIP(s)` and `status.hostIP(s)` read: the sandbox's and the node's addresses."""

    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedKeys:
    """envFrom keys that are not variable names: kubelet's InvalidEnvironmentVariableNames Event."""

    kind: str  # "configMap" or "secret"
    namespace: str
    name: str
    keys: tuple[str, ...]

    @property
    def message(self) -> str:
        return (f"Keys [{', '.join(self.keys)}] from the EnvFrom {self.kind} {self.namespace}/{self.name} "
                "were skipped since they are considered invalid environment variable names.")


@dataclass(frozen=True)
class ContainerEnv:
    """The environment in kubelet's order, the expanded command and args, the keys skipped."""

    env: dict[str, str]
    command: list[str] | None
    args: list[str] | None
    skipped: tuple[SkippedKeys, ...] = ()


# --------------------------------------------------------------------------- $(VAR) expansion


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """third_party/forked/golang/expansion.Expand: `$(NAME)` is replaced by NAME's value, or kept
    as written when NAME is unknown; `$$` is a literal `$`; any other `$` stays as it is."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close < 0:
                    out.append("$(")
                else:
                    name = text[cursor + 2:close]
                    found = lookup(name)
                    out.append(f"$({name})" if found is None else found)
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _lookup(*contexts: Mapping[str, str]) -> Callable[[str], str | None]:
    """MappingFuncFor: the first context that has the name."""
    def find(name: str) -> str | None:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return None
    return find


# --------------------------------------------------------------------------- valueFrom


def _format_map(values: Mapping[str, Any]) -> str:
    """fieldpath.FormatMap: `key="value"` lines, keys sorted, values Go-quoted."""
    return "\n".join(f"{k}={formats.go_quote(str(v))}" for k, v in sorted(values.items()))


def _subscript(path: str) -> tuple[str, str] | None:
    """`metadata.labels['app']` -> ("metadata.labels", "app")."""
    for prefix in ("metadata.labels", "metadata.annotations"):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return prefix, path[len(prefix) + 2:-2]
    return None


def pod_field_value(pod: Mapping[str, Any], path: str, addresses: PodAddresses) -> str:
    """kubelet's podFieldSelectorRuntimeValue with fieldpath.ExtractFieldPathAsString."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.podIP": addresses.pod_ips[0] if addresses.pod_ips else "",
              "status.podIPs": ",".join(addresses.pod_ips),
              "status.hostIP": addresses.host_ips[0] if addresses.host_ips else "",
              "status.hostIPs": ",".join(addresses.host_ips)}
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        return _format_map(meta.get(path.split(".")[1]) or {})
    sub = _subscript(path)
    if sub is not None:
        return str((meta.get(sub[0].split(".")[1]) or {}).get(sub[1], ""))
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def defaulted_resources(container: Mapping[str, Any], allocatable: Mapping[str, str]) -> Obj:
    """The container's resources with unset cpu/memory/ephemeral-storage limits taken from the
    node's allocatable (kubelet's defaultPodLimitsForDownwardAPI)."""
    resources = dict(container.get("resources") or {})
    limits = dict(resources.get("limits") or {})
    for name in DEFAULTED_LIMITS:
        if name not in limits and name in allocatable:
            limits[name] = allocatable[name]
    resources["limits"] = limits
    return resources


def resource_field_value(container: Mapping[str, Any], ref: Mapping[str, Any], allocatable: Mapping[str, str]) -> str:
    """resource.ExtractContainerResourceValue on the defaulted container: the value divided by
    the divisor (default 1), rounded up; CPU counted in millicores."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ContainerConfigError(f"unsupported container resource : {resource}")
    values = defaulted_resources(container, allocatable).get(kind) or {}
    try:
        amount = quantity.parse(values.get(name, 0))
        divisor = quantity.parse(ref.get("divisor") or 0) or quantity.parse(1)
    except quantity.QuantityError as exc:
        raise ContainerConfigError(f"{resource}: {exc}") from exc
    if name == "cpu":
        return str(-(-quantity.milli_value(amount) // max(quantity.milli_value(divisor), 1)))
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return str(-(-quantity.value(amount) // max(quantity.value(divisor), 1)))
    raise ContainerConfigError(f"unsupported container resource : {resource}")


def _secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's data, base64-decoded; bytes that are not UTF-8 kept as they are for exec."""
    out = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            raw = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            continue
        out[key] = raw.decode("utf-8", errors="surrogateescape")
    return out


def _configmap_values(cm: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (cm.get("data") or {}).items()}


def _not_found(kind: str, name: str) -> ContainerConfigError:
    return ContainerConfigError(f'{kind} "{name}" not found')


def _key_ref(ref: Mapping[str, Any], objects: Mapping[str, Obj | None], kind: str, namespace: str) -> str | None:
    """A configMapKeyRef/secretKeyRef's value; None when optional and missing."""
    name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), ref.get("optional") is True
    obj = objects.get(name)
    if obj is None:
        if optional:
            return None
        raise _not_found(kind.lower(), name)
    values = _secret_values(obj) if kind == "Secret" else _configmap_values(obj)
    if key not in values:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return values[key]


# --------------------------------------------------------------------------- the whole environment


def references(container: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The ConfigMap and Secret names a container's env and envFrom read."""
    configmaps: set[str] = set()
    secrets: set[str] = set()
    for source in container.get("envFrom") or []:
        if isinstance(source, dict):
            configmaps.add(str((source.get("configMapRef") or {}).get("name") or ""))
            secrets.add(str((source.get("secretRef") or {}).get("name") or ""))
    for var in container.get("env") or []:
        value_from = (var.get("valueFrom") if isinstance(var, dict) else None) or {}
        configmaps.add(str((value_from.get("configMapKeyRef") or {}).get("name") or ""))
        secrets.add(str((value_from.get("secretKeyRef") or {}).get("name") or ""))
    return configmaps - {""}, secrets - {""}


def _env_from(source: Mapping[str, Any], sources: EnvSources, namespace: str,
              env: dict[str, str]) -> SkippedKeys | None:
    """One envFrom entry into `env`; the invalid keys it skipped, if any."""
    prefix = str(source.get("prefix") or "")
    if isinstance(source.get("configMapRef"), dict):
        ref, kind, objects = source["configMapRef"], "configMap", sources.configmaps
    elif isinstance(source.get("secretRef"), dict):
        ref, kind, objects = source["secretRef"], "secret", sources.secrets
    else:
        return None
    name = str(ref.get("name") or "")
    obj = objects.get(name)
    if obj is None:
        if ref.get("optional") is True:
            return None
        raise _not_found(kind.lower(), name)
    values = _secret_values(obj) if kind == "secret" else _configmap_values(obj)
    invalid = []
    for key in sorted(values):
        full = prefix + key
        if formats.env_var_name_errors(full):
            invalid.append(full)
            continue
        env[full] = values[key]
    return SkippedKeys(kind, namespace, name, tuple(sorted(invalid))) if invalid else None


def _value_from(pod: Mapping[str, Any], container: Mapping[str, Any], value_from: Mapping[str, Any], *,
                sources: EnvSources, addresses: PodAddresses, allocatable: Mapping[str, str]) -> str | None:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    if isinstance(value_from.get("fieldRef"), dict):
        return pod_field_value(pod, str(value_from["fieldRef"].get("fieldPath") or ""), addresses)
    if isinstance(value_from.get("resourceFieldRef"), dict):
        ref = value_from["resourceFieldRef"]
        target = find_container(pod, str(ref["containerName"])) if ref.get("containerName") else container
        if target is None:
            raise ContainerConfigError(f"container {ref['containerName']} not found")
        return resource_field_value(target, ref, allocatable)
    if isinstance(value_from.get("configMapKeyRef"), dict):
        return _key_ref(value_from["configMapKeyRef"], sources.configmaps, "ConfigMap", namespace)
    if isinstance(value_from.get("secretKeyRef"), dict):
        return _key_ref(value_from["secretKeyRef"], sources.secrets, "Secret", namespace)
    return ""


def find_container(pod: Mapping[str, Any], name: str) -> Obj | None:
    """The spec of the pod's container (or init container) of this name (findContainerInPod)."""
    spec = pod.get("spec") or {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if isinstance(c, dict) and c.get("name") == name:
            return c
    return None


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], *, service_env: Mapping[str, str],
                  sources: EnvSources, addresses: PodAddresses = PodAddresses(),
                  allocatable: Mapping[str, str] | None = None) -> ContainerEnv:
    """makeEnvironmentVariables and ExpandContainerCommandAndArgs; raises ContainerConfigError."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    declared: dict[str, str] = {}
    skipped = []
    for source in container.get("envFrom") or []:
        if isinstance(source, dict):
            told = _env_from(source, sources, namespace, declared)
            if told is not None:
                skipped.append(told)
    for var in container.get("env") or []:
        if not isinstance(var, dict) or not var.get("name"):
            continue
        value = str(var.get("value") or "")
        if value:
            value = expand(value, _lookup(declared, service_env))
        elif isinstance(var.get("valueFrom"), dict):
            resolved = _value_from(pod, container, var["valueFrom"], sources=sources, addresses=addresses,
                                   allocatable=allocatable or {})
            if resolved is None:
                continue
            value = resolved
        declared[str(var["name"])] = value
    env = {**declared, **{k: v for k, v in service_env.items() if k not in declared}}
    return ContainerEnv(env, _expand_all(container.get("command"), env), _expand_all(container.get("args"), env),
                        tuple(skipped))


def _expand_all(values: Sequence[Any] | None, env: Mapping[str, str]) -> list[str] | None:
    if values is None:
        return None
    lookup = _lookup(env)
    return [expand(str(v), lookup) for v in values]
