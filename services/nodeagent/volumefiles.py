"""Which volumes of a pod this node makes, and the files of those it writes (pure).

The node makes `emptyDir`, `hostPath`, and the volumes whose contents it writes with the atomic
writer: `configMap`, `secret`, `downwardAPI` and `projected` (ServiceAccount tokens, ConfigMap
and Secret keys, downward API fields). Other kinds (persistentVolumeClaim, nfs, ...) are not
made, and mounts of them are left out.

The contents follow kubelet's volume plugins (pkg/volume/{configmap,secret,downwardapi,
projected}): every key, or the listed `items` (key -> path, with its own mode), each file's mode
the item's or the volume's `defaultMode` (0644); a missing object or key fails the volume with
kubelet's message unless the reference is `optional`. Given the objects (`VolumeInputs`), the
result is a plain map path -> (bytes, mode) for `projected.write_atomic`.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubecore.api.types import Obj
from services.nodeagent import podenv
from services.nodeagent.projected import TokenSource, VolumeError, token_sources

DEFAULT_MODE = 0o644
EMPTY_DIR, HOST_PATH, CONFIG_MAP, SECRET, DOWNWARD_API, PROJECTED = (
    "emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")
WRITTEN_KINDS = (CONFIG_MAP, SECRET, DOWNWARD_API, PROJECTED)  # made of files, refreshed on resync
NODE_KINDS = (EMPTY_DIR, HOST_PATH, *WRITTEN_KINDS)
# Where kubelet keeps each plugin's volumes under the pod's directory.
PLUGIN_DIRS = {EMPTY_DIR: "kubernetes.io~empty-dir", CONFIG_MAP: "kubernetes.io~configmap",
               SECRET: "kubernetes.io~secret", DOWNWARD_API: "kubernetes.io~downward-api",
               PROJECTED: "kubernetes.io~projected"}

Files = dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class NodeVolume:
    name: str
    kind: str
    source: Obj


def node_volumes(pod: Mapping[str, Any]) -> list[NodeVolume]:
    """The pod's volumes of the kinds this node makes, in spec order."""
    out = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if not isinstance(vol, dict) or not isinstance(vol.get("name"), str):
            continue
        kind = next((k for k in NODE_KINDS if isinstance(vol.get(k), dict)), None)
        if kind is not None:
            out.append(NodeVolume(vol["name"], kind, vol[kind]))
    return out


@dataclass(frozen=True)
class VolumeInputs:
    """What the written volumes of a pod read: tokens, ConfigMaps and Secrets by name (None: not
    found), and the node's allocatable for resourceFieldRef."""

    tokens: Mapping[TokenSource, str] = field(default_factory=dict)
    configmaps: Mapping[str, Obj | None] = field(default_factory=dict)
    secrets: Mapping[str, Obj | None] = field(default_factory=dict)
    allocatable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    configmaps: frozenset[str]
    secrets: frozenset[str]
    tokens: tuple[TokenSource, ...]


def references(volume: NodeVolume) -> References:
    """The objects and tokens a written volume needs."""
    if volume.kind == CONFIG_MAP:
        return References(frozenset({str(volume.source.get("name") or "")}), frozenset(), ())
    if volume.kind == SECRET:
        return References(frozenset(), frozenset({str(volume.source.get("secretName") or "")}), ())
    if volume.kind != PROJECTED:
        return References(frozenset(), frozenset(), ())
    sources = [s for s in volume.source.get("sources") or [] if isinstance(s, dict)]
    return References(
        frozenset(str(s["configMap"].get("name") or "") for s in sources if isinstance(s.get("configMap"), dict)),
        frozenset(str(s["secret"].get("name") or "") for s in sources if isinstance(s.get("secret"), dict)),
        tuple(token_sources(volume.source)))


def _mode(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _decoded(data: Mapping[str, Any]) -> dict[str, bytes]:
    out = {}
    for key, value in data.items():
        try:
            out[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            continue
    return out


def configmap_payload(cm: Mapping[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's `data` and (decoded) `binaryData`."""
    return {**{k: str(v).encode() for k, v in (cm.get("data") or {}).items()}, **_decoded(cm.get("binaryData") or {})}


def _payload(ref: Mapping[str, Any], obj: Obj | None, *, kind: str, name: str, default_mode: int) -> Files:
    """volume/util.MakePayload for a ConfigMap or Secret (`kind`) of this name."""
    optional = ref.get("optional") is True
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    data = configmap_payload(obj) if kind == "configmap" else _decoded(obj.get("data") or {})
    items = [i for i in ref.get("items") or [] if isinstance(i, dict)]
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            what = "configmap references non-existent config key" if kind == "configmap" else \
                "references non-existent secret key"
            raise VolumeError(f"{what}: {key}")
        out[str(item.get("path") or key)] = (data[key], _mode(item.get("mode"), default_mode))
    return out


def downward_files(pod: Mapping[str, Any], items: Any, default_mode: int, allocatable: Mapping[str, str]) -> Files:
    """downwardapi.CollectData: each item's field or resource value."""
    out = {}
    for item in items or []:
        if not isinstance(item, dict):
            continue
        try:
            if isinstance(item.get("fieldRef"), dict):
                value = podenv.pod_field_value(pod, str(item["fieldRef"].get("fieldPath") or ""),
                                               podenv.PodAddresses())
            elif isinstance(item.get("resourceFieldRef"), dict):
                ref = item["resourceFieldRef"]
                container = podenv.find_container(pod, str(ref.get("containerName") or ""))
                if container is None:
                    raise VolumeError(f"container {ref.get('containerName')} not found")
                value = podenv.resource_field_value(container, ref, allocatable)
            else:
                continue
        except podenv.ContainerConfigError as exc:
            raise VolumeError(str(exc)) from exc
        out[str(item.get("path") or "")] = (value.encode(), _mode(item.get("mode"), default_mode))
    return out


def projected_files(pod: Mapping[str, Any], projected: Obj, inputs: VolumeInputs) -> Files:
    """projected.collectData: every source in order, later paths over earlier ones."""
    mode = _mode(projected.get("defaultMode"), DEFAULT_MODE)
    files: Files = {}
    for source in projected.get("sources") or []:
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("serviceAccountToken"), dict):
            (ts,) = token_sources({"sources": [source]})
            files[ts.path] = (inputs.tokens[ts].encode(), mode)
        elif isinstance(source.get("configMap"), dict):
            name = str(source["configMap"].get("name") or "")
            files.update(_payload(source["configMap"], inputs.configmaps.get(name), kind="configmap", name=name,
                                  default_mode=mode))
        elif isinstance(source.get("secret"), dict):
            name = str(source["secret"].get("name") or "")
            files.update(_payload(source["secret"], inputs.secrets.get(name), kind="secret", name=name,
                                  default_mode=mode))
        elif isinstance(source.get("downwardAPI"), dict):
            files.update(downward_files(pod, source["downwardAPI"].get("items"), mode, inputs.allocatable))
    return files


def volume_files(pod: Mapping[str, Any], volume: NodeVolume, inputs: VolumeInputs) -> Files:
    """The files of a written volume (configMap, secret, downwardAPI, projected)."""
    src = volume.source
    mode = _mode(src.get("defaultMode"), DEFAULT_MODE)
    if volume.kind == CONFIG_MAP:
        name = str(src.get("name") or "")
        return _payload(src, inputs.configmaps.get(name), kind="configmap", name=name, default_mode=mode)
    if volume.kind == SECRET:
        name = str(src.get("secretName") or "")
        return _payload(src, inputs.secrets.get(name), kind="secret", name=name, default_mode=mode)
    if volume.kind == DOWNWARD_API:
        return downward_files(pod, src.get("items"), mode, inputs.allocatable)
    if volume.kind == PROJECTED:
        return projected_files(pod, src, inputs)
    raise VolumeError(f"volume {volume.name!r} of kind {volume.kind} is not written")
